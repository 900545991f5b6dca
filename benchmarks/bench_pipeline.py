"""End-to-end wall time of a config, split by stage, and the cost of re-runs, in one process run:

1. the whole pipeline from an empty results/ (model conversion included unless --reuse-model is given);
2. a re-run with nothing changed;
3. a re-run after adding one temperature.

    .venv/bin/python benchmarks/bench_pipeline.py [--config config/config.yaml] [--workdir DIR] [--reuse-model]

Stage times come from Snakemake's `benchmark:` files and the generation jobs' statistics. Prints Markdown tables."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import yaml

REPO = Path(__file__).resolve().parents[1]


def snakemake(workdir: Path, config_file: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
         "--profile", str(REPO / "profiles/local"), "--configfile", str(config_file), "--quiet", "all"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - start


def stage_table(workdir: Path, experiment: str) -> list[tuple[str, float]]:
    """Seconds per stage, from benchmark files (and, for generation, engine start vs generating)."""
    stages = []
    for folder in (workdir / "resources/models/logs", workdir / f"results/{experiment}/benchmarks"):
        for path in sorted(folder.glob("*.tsv")) if folder.is_dir() else []:
            seconds = pl.read_csv(path, separator="\t")["s"][0]
            stages.append((path.stem.replace(".benchmark", ""), float(seconds)))
    for path in sorted((workdir / f"results/{experiment}/shards").glob("*.stats.json")):
        stats = json.loads(path.read_text())
        stages.append((f"  {path.stem.split('.')[0]}: engine start", stats["engine_start_seconds"]))
        stages.append(
            (f"  {path.stem.split('.')[0]}: generation ({stats['generated_tokens']} tokens)", stats["generate_seconds"])
        )
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "config/config.yaml"))
    parser.add_argument("--workdir", help="where to run (default: a new temporary folder)")
    parser.add_argument("--reuse-model", action="store_true", help="copy resources/ from the repository")
    arguments = parser.parse_args()

    workdir = Path(arguments.workdir or tempfile.mkdtemp(prefix="bench-pipeline-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if arguments.reuse_model and (REPO / "resources").is_dir():
        shutil.copytree(REPO / "resources", workdir / "resources", dirs_exist_ok=True)
    config = yaml.safe_load(Path(arguments.config).read_text())
    config_file = workdir / "bench-config.yaml"
    config_file.write_text(yaml.safe_dump(config))

    full = snakemake(workdir, config_file)
    stages = stage_table(workdir, config["experiment"])
    noop = snakemake(workdir, config_file)
    temperatures = config.get("temperatures", [])
    config["temperatures"] = (
        [*temperatures, 1.5] if isinstance(temperatures, list) and 1.5 not in temperatures else temperatures
    )
    config_file.write_text(yaml.safe_dump(config))
    added = snakemake(workdir, config_file)

    print(f"Config: {arguments.config}; workdir {workdir}\n")
    print("| run | wall seconds |\n| --- | ---: |")
    print(f"| whole pipeline from nothing{' (model reused)' if arguments.reuse_model else ''} | {full:.1f} |")
    print(f"| re-run, nothing changed | {noop:.1f} |")
    print(f"| re-run after adding temperature 1.5 | {added:.1f} |\n")
    print("| stage (first run) | seconds |\n| --- | ---: |")
    for name, seconds in stages:
        print(f"| {name} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
