"""End-to-end wall time of a config, split by stage, and the cost of re-runs, in one process run:

1. the whole pipeline from an empty results/ (model conversion included unless --reuse-model is given);
2. a re-run with nothing changed;
3. a re-run after adding one temperature.

    .venv/bin/python benchmarks/bench_pipeline.py [--config config/config.yaml] [--judge] [--workdir DIR]
                                                  [--reuse-model] [--baseline]

--config is laid over config/config.yaml, as Snakemake does (benchmarks/grid-225.yaml: 7 temperatures x 32 seeds x
128 tokens); --judge turns the LLM judge on; --baseline also times Hugging Face `generate`, one story at a time, in
the pipeline's dtype (benchmarks/bench_generation.py's measurement), and reports the whole first run against it.
Stage times come from Snakemake's `benchmark:` files and the generation jobs' statistics (engine start, generation,
the judge's questions asked on the generation engine, the embedders run in the same job). Where SLURM is installed,
the time its `scontrol show config` takes is printed too: Snakemake's SLURM plugin runs it at every start. Prints
Markdown tables."""

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
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(workdir),
            "--profile",
            str(REPO / "profiles/local"),
            "--configfile",
            str(config_file),
            "--quiet",
            "all",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def stage_table(workdir: Path, experiment: str, since: float = 0.0) -> dict[str, float]:
    """Seconds per stage, from the benchmark files written after ``since`` (a time.time()), and for generation,
    engine start vs generating vs the judge's questions on the same engine."""
    stages = {}
    for folder in (workdir / "resources/models/logs", workdir / f"results/{experiment}/benchmarks"):
        for path in sorted(folder.glob("*.tsv")) if folder.is_dir() else []:
            if path.stat().st_mtime >= since:
                stages[path.stem.replace(".benchmark", "")] = float(pl.read_csv(path, separator="\t")["s"][0])
    for path in sorted((workdir / f"results/{experiment}/shards").glob("*.stats.json")):
        if path.stat().st_mtime < since:
            continue
        stats, shard = json.loads(path.read_text()), path.stem.split(".")[0]
        stages[f"  {shard}: engine start"] = stats["engine_start_seconds"]
        rate = stats.get("tokens_per_second", 0)
        stages[f"  {shard}: generation ({stats['generated_tokens']} tokens, {rate:.0f} tokens/s)"] = stats[
            "generate_seconds"
        ]
        for prefix, stories in (("judge", "the stories"), ("judge_study", "the study's stories")):
            if f"{prefix}_seconds" in stats:
                label = f"  {shard}: judge on the same engine, {stories} ({stats[f'{prefix}_asked']} answers asked)"
                stages[label] = stats[f"{prefix}_seconds"]
        for name in ("model", "minilm"):
            if f"embed_{name}_seconds" in stats:
                label = f"  {shard}: embedder {name} in the same job ({stats[f'embedded_{name}']} stories embedded)"
                stages[label] = stats[f"embed_{name}_seconds"]
    return stages


def slurm_plugin_wait() -> float | None:
    """Seconds of `scontrol show config`, which Snakemake's SLURM executor plugin runs whenever Snakemake starts
    (where SLURM is installed); None where it is not."""
    if shutil.which("scontrol") is None:
        return None
    start = time.perf_counter()
    subprocess.run(["scontrol", "show", "config"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def hf_one_at_a_time(model_dir: Path, dtype: str, max_tokens: int) -> float:
    """Hugging Face generate, one story at a time, tokens/s (bench_generation.py's measurement)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_generation import run_engine

    arguments = argparse.Namespace(stories=4, max_tokens=max_tokens, one_at_a_time=4, batch=1, dtype=dtype)
    result = run_engine("hf-single", arguments, model_dir)
    return result["tokens"] / result["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "config/config.yaml"))
    parser.add_argument("--workdir", help="where to run (default: a new temporary folder)")
    parser.add_argument("--reuse-model", action="store_true", help="copy resources/ from the repository")
    parser.add_argument("--judge", action="store_true", help="turn the LLM judge on")
    parser.add_argument("--baseline", action="store_true", help="also time HF generate, one story at a time")
    arguments = parser.parse_args()

    workdir = Path(arguments.workdir or tempfile.mkdtemp(prefix="bench-pipeline-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if arguments.reuse_model and (REPO / "resources").is_dir():
        shutil.copytree(REPO / "resources", workdir / "resources", dirs_exist_ok=True)
    default = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config = default | yaml.safe_load(Path(arguments.config).read_text())
    if arguments.judge:
        config["judge"] = {**config.get("judge", {}), "enabled": True}
    config_file = workdir / "bench-config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    experiment = config["experiment"]

    started = time.time()
    full = snakemake(workdir, config_file)
    first = stage_table(workdir, experiment, started)
    noop = snakemake(workdir, config_file)
    temperatures = config["temperatures"]
    added_temperature = next(t for t in (1.5, 0.5, 1.25, 1.75) if t not in temperatures)
    config["temperatures"] = sorted([*temperatures, added_temperature])
    config_file.write_text(yaml.safe_dump(config))
    since = time.time()
    added = snakemake(workdir, config_file)
    incremental = stage_table(workdir, experiment, since)

    stories = pl.read_parquet(workdir / f"results/{experiment}/generations.parquet")
    first_tokens = int(stories.filter(pl.col("temperature") != added_temperature)["num_tokens"].sum())
    print(
        f"Config: {arguments.config} over config/config.yaml{', judge on' if arguments.judge else ''}; "
        f"workdir {workdir}\n"
    )
    print("| run | wall seconds |\n| --- | ---: |")
    print(f"| whole pipeline from nothing{' (model reused)' if arguments.reuse_model else ''} | {full:.1f} |")
    print(f"| re-run, nothing changed | {noop:.1f} |")
    print(f"| re-run after adding temperature {added_temperature} | {added:.1f} |")
    wait = slurm_plugin_wait()
    if wait is not None:
        print(f"| of each run, the SLURM plugin's `scontrol show config` (not the pipeline) | {wait:.1f} |")
    print()
    print(f"| stage | first run, seconds | after adding temperature {added_temperature}, seconds |")
    print("| --- | ---: | ---: |")
    for name in [*first, *(name for name in incremental if name not in first)]:
        cells = [f"{stages[name]:.1f}" if name in stages else "" for stages in (first, incremental)]
        print(f"| {name} | {cells[0]} | {cells[1]} |")
    print(f"\nWhole first run: {first_tokens} story tokens in {full:.1f} s = {first_tokens / full:.0f} tokens/s")
    if arguments.baseline:
        model_dir = workdir / "resources/models/smollm2-135m-instruct"
        baseline = hf_one_at_a_time(model_dir, config["model"]["dtype"], config["decoding"]["max_tokens"])
        print(
            f"Hugging Face generate, one story at a time ({config['model']['dtype']}): {baseline:.1f} tokens/s; "
            f"the whole first run is {first_tokens / full / baseline:.1f}x that"
        )


if __name__ == "__main__":
    main()
