"""Smoke test: benchmarks/bench_sweep.py writes a tiny sweep's products without generating, runs every analysis rule
on them through Snakemake (MLflow against a real server) and prints a row of numbers per rule (no timing asserts)."""

from __future__ import annotations

import subprocess
import sys

import polars as pl
import pytest
import yaml

from conftest import REPO

pytestmark = pytest.mark.e2e  # Snakemake and an MLflow server

# 2 models x 2 temperatures x 2 min-p x 4 seeds = 32 stories (+ 2 exemplars), in two shards
TINY_SWEEP = {
    "models": [{"id": "model-a", "path": "org/model-a"}, {"id": "model-b", "path": "org/model-b"}],
    "prompts": [{"id": "story", "text": "Write a story."}],
    "temperatures": [0.5, 1.5],
    "sweep": {"min_p": [0.0, 0.1]},
    "seeds": 4,
    "sharding": {"shards": 2},
    "scoring": {"embedders": ["minilm"], "bootstrap_resamples": 100},
}
RULES = {
    "collect_generations",
    "collect_embeddings (minilm)",
    "score_stories",
    "summarise_scores",
    "plot_figures",
    "frontier",
    "study_tables",
    "build_report",
    "track_mlflow",
}


def test_sweep_benchmark_runs_every_analysis_rule_and_prints_its_numbers(tmp_path):
    config = tmp_path / "tiny-sweep.yaml"
    config.write_text(yaml.safe_dump(TINY_SWEEP))
    workdir = tmp_path / "run"
    completed = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks/bench_sweep.py"),
            "--config",
            str(config),
            "--no-judge",
            "--min-tokens",
            "100",
            "--max-tokens",
            "300",
            "--workdir",
            str(workdir),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "32 stories + 2 exemplars in 2 shards, 8 cells" in completed.stdout
    table = [line for line in completed.stdout.splitlines() if line.startswith("| ")]
    assert table[0] == "| rule | wall (s) | CPU (s) | peak memory (MiB) | Snakemake's benchmark: file |"
    rows = {cells[0]: cells[1:] for cells in ([cell.strip() for cell in line.strip("|").split("|")] for line in table)}
    assert RULES <= set(rows), f"a row per analysis rule: {sorted(rows)}"
    assert not {"generate_shard", "judge_stories", "describe_model"} & set(rows), "nothing generated"
    for rule in RULES:
        wall, cpu, peak = (float(value.replace(",", "")) for value in rows[rule][:3])
        assert wall > 0 and cpu > 0 and peak > 20, (rule, rows[rule])
    assert rows["score_stories"][3].endswith("MiB"), "Snakemake's own benchmark beside, where the rule has one"
    stories = pl.read_parquet(workdir / "results/sweep-bench/generations.parquet")
    assert stories.height == 34 and stories["logprobs"].list.len().min() > 0
    assert (workdir / "reports/sweep-bench/index.html").is_file()
    assert "logged to http://127.0.0.1:" in (workdir / "results/sweep-bench/logs/track_mlflow.done").read_text()
