"""Beyond temperature, end to end: 2 models (the embedded one and a tiny random Llama) x 2 temperatures x 2 min-p
x 2 seeds through the whole pipeline: rows with their axes, a summary per cell, trends per axis, the frontier
figure in the report, and one MLflow child per cell with its axes as params."""

from __future__ import annotations

import json
import math

import polars as pl

RESULTS = "results/sweep"
CELLS = {
    (model, min_p, temperature) for model in ("smollm2", "tiny") for min_p in (0.0, 0.1) for temperature in (0.7, 1.3)
}


def test_every_story_has_its_cell_and_every_model_its_exemplar(sweep_run):
    generations = pl.read_parquet(sweep_run / RESULTS / "generations.parquet")
    assert generations.height == len(CELLS) * 2 + 2
    assert generations.filter(pl.col("is_exemplar"))["story_id"].to_list() == [
        "smollm2:story:exemplar",
        "tiny:story:exemplar",
    ]
    stories = generations.filter(~pl.col("is_exemplar"))
    counts = stories.group_by("model_id", "min_p", "temperature").len()
    assert set(counts.select("model_id", "min_p", "temperature").rows()) == CELLS and (counts["len"] == 2).all()
    assert "smollm2:story:T0.7:min_p0.1:s1" in stories["story_id"].to_list()
    shas = generations.group_by("model_id").agg(pl.col("model_sha256").unique())
    assert shas.height == 2 and shas["model_sha256"].list.len().to_list() == [1, 1]
    assert len(set(shas["model_sha256"].explode())) == 2  # two models, two sets of weights
    # vLLM was given the cell's min-p: after temperature T every sampled token keeps p_T >= 0.1 p_T(max), i.e.
    # raw log p - raw log p_max >= T ln 0.1 (from each token's stored raw log-probability and the top one's)
    for row in stories.filter(pl.col("min_p") == 0.1).iter_rows(named=True):
        bound = row["temperature"] * math.log(0.1) - 1e-3
        assert all(lp - top >= bound for lp, top in zip(row["logprobs"], row["top_logprobs"])), row["story_id"]


def test_summary_per_cell_trends_per_axis_and_the_frontier(sweep_run):
    summary = pl.read_parquet(sweep_run / RESULTS / "summary.parquet")
    assert set(summary.select("model_id", "min_p", "temperature").rows()) == CELLS and (summary["n"] == 2).all()
    trends = pl.read_parquet(sweep_run / RESULTS / "trends.parquet")
    groups = set(trends.select("axis", "model_id", "within").rows())
    assert groups == {("temperature", model, f"min-p {m}") for model in ("smollm2", "tiny") for m in ("0", "0.1")} | {
        ("min_p", model, f"temperature {t}") for model in ("smollm2", "tiny") for t in ("0.7", "1.3")
    }
    frontier = pl.read_parquet(sweep_run / RESULTS / "frontier.parquet")
    assert set(frontier.select("model_id", "min_p", "temperature").rows()) == CELLS
    assert set(frontier["sampler"]) == {"min-p 0", "min-p 0.1"} and set(frontier["quality_measure"]) == {"perplexity"}
    assert (sweep_run / RESULTS / "figures" / "frontier.png").stat().st_size > 10_000
    report = (sweep_run / "reports" / "sweep" / "index.html").read_text()
    words = " ".join(report.split())  # (the caption's lines wrap anywhere)
    assert "Samplers at equal diversity" in words and "not a judgement of quality" in words
    assert "2 models × min_p 0.0/0.1 × temperatures 0.7, 1.3" in report


def test_one_mlflow_child_per_cell_with_its_model_and_axes_as_params(sweep_run):
    from mlflow import MlflowClient

    runs = json.loads((sweep_run / RESULTS / "mlflow.json").read_text())
    client = MlflowClient(runs["tracking_uri"])
    children = runs["child_run_ids"]
    assert len(children) == len(CELLS) and "tiny story T=1.3 min_p=0.1" in children
    params = [client.get_run(run_id).data.params for run_id in children.values()]
    assert {(p["model_id"], float(p["min_p"]), float(p["temperature"])) for p in params} == CELLS
    assert all(p["top_p"] == "1.0" and p["truncation"] == "scaled" for p in params)
    artifacts = [artifact.path for artifact in client.list_artifacts(runs["parent_run_id"], "figures")]
    assert "figures/frontier.png" in artifacts
