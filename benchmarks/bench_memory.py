"""Peak resident memory of every job of a run, and of `make study`, each from its own measurement:

- the pipeline's jobs: the last line of each job's log (tempcreativity.logs.PEAK_MEMORY_LINE, the kernel's high-water
  mark of the job's process, sampled by the kernel, so no peak is missed between samples as Snakemake's 1-30 s
  `benchmark:` sampling can), after a run of each --config from empty results in a new folder;
- `make study`'s scoring (`tempcreativity study`, teacher forcing and both embedders, embedding cache empty): its
  process's high-water mark, from os.wait4.

    .venv/bin/python benchmarks/bench_memory.py [--config FILE ...] [--no-study] [--reuse-model]

Each --config is laid over config/config.yaml, as Snakemake does (default: config/config.yaml itself, then
benchmarks/grid-225.yaml). --reuse-model copies the converted model from this repository's resources/ (else each
run converts it, and the conversion job is measured too). Prints one Markdown table: job, peak MiB, seconds (from
Snakemake's benchmark files, where the rule has one)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from tempcreativity.logs import logged_peak_memory_mib  # noqa: E402

EMBEDDED = "resources/models/smollm2-135m-instruct"


def run_pipeline(workdir: Path, config_file: Path) -> None:
    subprocess.run(
        [
            *(sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")),
            *("--directory", str(workdir), "--profile", str(REPO / "profiles/local")),
            *("--configfile", str(config_file), "--quiet", "all"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def job_peaks(workdir: Path) -> dict[str, tuple[int, float | None]]:
    """Peak MiB (the process or its largest child, whichever is larger) and seconds of every job whose log records
    its peak, by log name."""
    peaks = {}
    for log in sorted([*workdir.glob("results/*/logs/*.log"), *workdir.glob("resources/models/logs/*.log")]):
        found = logged_peak_memory_mib(log.read_text(errors="replace"))
        if found is None:
            continue
        seconds = None
        for benchmark in (log.parent.parent / "benchmarks" / f"{log.stem}.tsv", log.with_suffix(".benchmark.tsv")):
            if benchmark.is_file():
                seconds = float(pl.read_csv(benchmark, separator="\t")["s"][0])
        peaks[log.stem] = (max(found), seconds)
    return peaks


def study_peak(workdir: Path) -> tuple[int, float]:
    """`make study`'s scoring from an empty embedding cache: peak MiB and seconds."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("tempcreativity")),
            *("study", "--out", str(workdir / "study"), "--cache", str(workdir / "study-cache")),
            *("--model-dir", str(workdir / EMBEDDED)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"tempcreativity study failed (status {status})")
    return round(usage.ru_maxrss / 1024), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", help="a config laid over config/config.yaml (repeatable)")
    parser.add_argument("--no-study", action="store_true", help="leave out `make study`")
    parser.add_argument("--reuse-model", action="store_true", help="copy the converted model from resources/")
    arguments = parser.parse_args()
    configs = arguments.config or [str(REPO / "config/config.yaml"), str(REPO / "benchmarks/grid-225.yaml")]

    rows = []
    default = yaml.safe_load((REPO / "config/config.yaml").read_text())
    for config_path in configs:
        workdir = Path(tempfile.mkdtemp(prefix="bench-memory-"))
        if arguments.reuse_model and (REPO / EMBEDDED).is_dir():
            shutil.copytree(REPO / EMBEDDED, workdir / EMBEDDED)
        config_file = workdir / "bench-config.yaml"
        config_file.write_text(yaml.safe_dump(default | yaml.safe_load(Path(config_path).read_text())))
        run_pipeline(workdir, config_file)
        name = Path(config_path).relative_to(REPO) if Path(config_path).is_relative_to(REPO) else config_path
        rows += [(str(name), job, mib, seconds) for job, (mib, seconds) in job_peaks(workdir).items()]
        if not arguments.no_study and config_path == configs[0]:
            mib, seconds = study_peak(workdir)
            rows.append(("make study", "tempcreativity study (teacher forcing, both embedders)", mib, seconds))
        shutil.rmtree(workdir, ignore_errors=True)

    print("| run | job | peak memory (MiB) | seconds |\n| --- | --- | ---: | ---: |")
    for run, job, mib, seconds in rows:
        print(f"| {run} | {job} | {mib:,} | {'' if seconds is None else f'{seconds:.1f}'} |")


if __name__ == "__main__":
    main()
