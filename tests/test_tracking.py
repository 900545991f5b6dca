"""MLflow logging against a real `mlflow server` on 127.0.0.1 that the tests start and stop, on the shared tiny
pipeline run: what is logged, idempotent re-runs, the server going away, and the dashboard."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest
from mlflow.tracking import MlflowClient

from conftest import TINY_CONFIG, run_snakemake
from tempcreativity.tracking import KEY_TAG, result_key

pytestmark = pytest.mark.e2e

GENERATIONS = Path("results/tiny/generations.parquet")
CELLS = 2 * 3  # prompts x temperatures of the tiny grid
# The tiny config with the analysis slimmed (no judge, no people's ratings, one embedder), so that growing the
# grid below costs one engine start. The analysis is not part of the parent run's key.
TRACKED = {**TINY_CONFIG, "judge": {"enabled": False}, "ratings": None, "scoring": {"embedders": ["minilm"]}}


def story_table(client: MlflowClient, run_id: str, folder: Path):
    """A child run's per-story table, as MLflow's UI reads it (the artifact mlflow.log_table wrote)."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    payload = json.loads(Path(client.download_artifacts(run_id, "stories.json", str(folder))).read_text())
    return pd.DataFrame(payload["data"], columns=payload["columns"])


def parent_digest(client: MlflowClient, parent) -> str:
    (item,) = client.get_run(parent.info.run_id).inputs.dataset_inputs
    return item.dataset.digest


def runs_of(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("tiny")
    return client.search_runs([experiment.experiment_id]) if experiment else []


@pytest.fixture(scope="module")
def tracked(tiny_run, mlflow_server, tmp_path_factory) -> Path:
    """A copy of the tiny run whose tracking step logged to the server."""
    workdir = tmp_path_factory.mktemp("tracked") / "run"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    run_snakemake(workdir, TRACKED, "--forcerun", "track_mlflow", env={"MLFLOW_TRACKING_URI": mlflow_server.uri})
    return workdir


def test_default_run_logs_to_a_local_store_under_results(tiny_run):
    runs = json.loads((tiny_run / "results/tiny/mlflow.json").read_text())
    assert runs["tracking_uri"] == f"sqlite:///{tiny_run / 'results/mlflow.db'}"
    client = MlflowClient(runs["tracking_uri"])
    assert len(runs_of(client)) == 1 + CELLS
    artifacts = client.get_experiment_by_name("tiny").artifact_location
    assert artifacts == (tiny_run / "results/mlartifacts").as_uri()
    # the tiny run has the judge on: each child's story table carries its ratings, and its means are metrics
    child = next(run for run in runs_of(client) if run.data.tags.get("tempcreativity.cell") == "story T=1")
    table = story_table(client, child.info.run_id, tiny_run / "download")
    assert {"judge_novelty", "judge_coherence"} <= set(table.columns)
    stories = table[~table["is_exemplar"]]
    assert child.data.metrics["judge_novelty_mean"] == pytest.approx(stories["judge_novelty"].mean())


def test_parent_and_child_runs_hold_the_results(tracked, mlflow_server):
    client = MlflowClient(mlflow_server.uri)
    runs = runs_of(client)
    parents = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and len(children) == CELLS
    parent = parents[0]
    manifest = json.loads((tracked / "resources/models/smollm2-135m-instruct.json").read_text())
    assert parent.data.tags[KEY_TAG] and parent.data.tags["model_sha256"] == manifest["sha256"]
    assert parent.data.params["decoding.max_tokens"] == "32" and parent.data.params["model.path"] == "embedded"
    assert parent.data.params["decoding.truncation"] == "scaled" and parent.data.params["seeding"] == "independent"
    assert re.fullmatch(r"[0-9a-f]{40}|unknown.*", parent.data.tags["git.commit"])
    assert {"version.vllm", "version.mlflow", "version.snakemake", "version.torch"} <= set(parent.data.tags)
    trends = pl.read_parquet(tracked / "results/tiny/trends.parquet")
    rho = trends.filter(pl.col("score") == "perplexity")["rho"][0]
    assert parent.data.metrics["rho.perplexity"] == pytest.approx(rho)
    assert parent.data.metrics["stories"] == 14

    summary = pl.read_parquet(tracked / "results/tiny/summary.parquet")
    generations = pl.read_parquet(tracked / GENERATIONS)
    for child in children:
        row = summary.filter(
            (pl.col("prompt_id") == child.data.params["prompt_id"])
            & (pl.col("temperature") == float(child.data.params["temperature"]))
        ).row(0, named=True)
        assert "temperature" not in child.data.metrics, "a param is not also a metric"
        assert child.data.metrics["perplexity_mean"] == pytest.approx(row["perplexity_mean"])
        assert child.data.metrics["n_stories"] == 2 and child.data.metrics["tokens_generated"] > 0
        assert child.data.params["model_sha256"] == manifest["sha256"] and child.data.params["top_k"] == "50"
        assert child.data.params["truncation"] == "scaled" and child.data.params["stop"] == "[]"
        assert child.data.params["seeding"] == "independent"

        # review tags, the prompts as the input dataset, and the per-story table the UI shows
        assert child.data.tags["mlflow.source.git.commit"] == parent.data.tags["git.commit"]
        assert child.data.tags["config_digest"] == parent.data.tags["config_digest"] and child.data.tags["vllm_version"]
        inputs = client.get_run(child.info.run_id).inputs.dataset_inputs
        assert [(item.dataset.name, item.dataset.digest) for item in inputs] == [
            ("prompts", parent_digest(client, parent))
        ]
        table = story_table(client, child.info.run_id, tracked / "download" / child.info.run_id)
        cell = generations.filter(
            (pl.col("prompt_id") == row["prompt_id"]) & (pl.col("temperature") == row["temperature"])
        )
        stories = table[~table["is_exemplar"]]
        assert sorted(stories["story_id"]) == sorted(cell["story_id"]) and table["is_exemplar"].sum() == 1
        assert set(stories["text"]) == set(cell["text"]) and {"perplexity", "edit_distance", "seed"} <= set(
            table.columns
        )

    artifacts = {item.path for item in client.list_artifacts(parent.info.run_id)}
    assert {"config.yaml", "generations.parquet", "scores.parquet", "figures", "report"} <= artifacts
    downloaded = client.download_artifacts(parent.info.run_id, "generations.parquet", str(tracked / "download"))
    assert Path(downloaded).read_bytes() == (tracked / GENERATIONS).read_bytes()
    assert parent.data.tags["config.temperatures"] == "[0.5, 1.0, 1.5]"
    assert result_key(TRACKED, "x") == result_key(TINY_CONFIG | {"temperatures": [9]}, "x") != result_key(TRACKED, "y")
    assert result_key(TRACKED | {"seeding": "shared"}, "x") != result_key(TRACKED | {"seeding": "independent"}, "x")


def test_rerun_updates_the_same_runs(tracked, mlflow_server):
    client = MlflowClient(mlflow_server.uri)
    before = sorted(run.info.run_id for run in runs_of(client))
    run_snakemake(tracked, TRACKED, "--forcerun", "track_mlflow", env={"MLFLOW_TRACKING_URI": mlflow_server.uri})
    assert sorted(run.info.run_id for run in runs_of(client)) == before
    child = next(run for run in runs_of(client) if "mlflow.parentRunId" in run.data.tags)
    assert len(client.get_metric_history(child.info.run_id, "perplexity_mean")) == 1, "no duplicate points"
    assert len(client.get_run(child.info.run_id).inputs.dataset_inputs) == 1, "the prompts logged once"
    table = story_table(client, child.info.run_id, tracked / "download-again")
    assert len(table) == 3, "the story table replaced, not appended to (2 stories and the exemplar)"


def test_server_down_fails_clearly_keeps_results_and_logs_later(tracked, mlflow_server):
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    results = {path: path.read_bytes() for path in (tracked / "results/tiny").glob("*.parquet")}
    results |= {path: path.read_bytes() for path in (tracked / "results/tiny").glob("mlflow.json")}  # (kept too)
    mlflow_server.stop()
    try:
        failed = run_snakemake(tracked, TRACKED, "--forcerun", "track_mlflow", check=False, env=env)
    finally:
        mlflow_server.start()
    output = failed.stdout + failed.stderr + (tracked / "results/tiny/logs/track_mlflow.log").read_text()
    assert failed.returncode != 0 and "is unreachable after 3 attempts" in output
    assert {path: path.read_bytes() for path in results} == results
    assert (tracked / "reports/tiny/index.html").is_file()
    client = MlflowClient(mlflow_server.uri)
    count = len(runs_of(client))
    completed = run_snakemake(tracked, TRACKED, env=env)  # only the tracking step is left to do
    assert "rule track_mlflow" in completed.stdout + completed.stderr
    assert "rule generate_shard" not in completed.stdout + completed.stderr
    assert len(runs_of(client)) == count


def test_growing_the_grid_adds_child_runs_only_for_new_cells(tracked, grown_run, mlflow_server):
    # The new temperature's stories from the grown run's cache (the same stories: no engine start needed here).
    shutil.copytree(grown_run / "results/cache/generations", tracked / "results/cache/generations", dirs_exist_ok=True)
    client = MlflowClient(mlflow_server.uri)
    before = {run.info.run_name: run.info.run_id for run in runs_of(client)}
    grown = {**TRACKED, "temperatures": [0.5, 1.0, 1.5, 2.0]}
    run_snakemake(tracked, grown, env={"MLFLOW_TRACKING_URI": mlflow_server.uri})
    after = {run.info.run_name: run.info.run_id for run in runs_of(client)}
    assert set(after) - set(before) == {"story T=2", "poem T=2"}
    assert all(after[name] == run_id for name, run_id in before.items())


def test_dashboard_lists_the_runs(tracked, mlflow_server, chromium):
    client = MlflowClient(mlflow_server.uri)
    experiment = client.get_experiment_by_name("tiny")
    parent = next(run for run in runs_of(client) if "mlflow.parentRunId" not in run.data.tags)
    page = f"{mlflow_server.uri}/#/experiments/{experiment.experiment_id}/runs"
    dom = chromium("--virtual-time-budget=15000", "--dump-dom", page)
    assert "Runs - Experiment" in dom and parent.info.run_name in dom, dom[-2000:]
    assert "prompts" in dom, "the prompts dataset in the runs table"
    # a child's per-story table opens in the run's Artifacts tab, its stories listed
    child = next(run for run in runs_of(client) if run.data.tags.get("tempcreativity.cell") == "poem T=0.5")
    page = (
        f"{mlflow_server.uri}/#/experiments/{experiment.experiment_id}/runs/{child.info.run_id}/artifacts/stories.json"
    )
    dom = chromium("--virtual-time-budget=15000", "--dump-dom", page)
    assert "View as table" in dom and "poem:T0.5:s0" in dom and "poem:T0.5:s1" in dom, dom[-2000:]


def test_dashboard_expands_the_parent_into_children_with_metric_columns(tracked, mlflow_server, chromium):
    """What a reviewer does in the UI: expand the parent, choose metric columns; every cell's child is listed."""
    from mlflow_ui import REVIEW_COLUMNS, review_runs_page

    client = MlflowClient(mlflow_server.uri)
    experiment = client.get_experiment_by_name("tiny")
    page = review_runs_page(mlflow_server.uri, experiment.experiment_id)
    assert page["expanded"], page["text"][-2000:]
    cells = {run.info.run_name for run in runs_of(client) if "mlflow.parentRunId" in run.data.tags}
    assert cells >= {"story T=0.5", "poem T=1.5"} and all(name in page["text"] for name in cells)
    assert all(column in page["headers"].split("|") for column in REVIEW_COLUMNS), page["headers"]


def test_params_are_the_keyed_sections_and_everything_else_is_a_tag():
    from tempcreativity.tracking import config_tags, finite, flatten, key_params

    config = {
        "experiment": "e",
        "model": {"path": "m", "engine_args": {}},
        "prompts": [{"id": "p"}],
        "decoding": {"top_k": 50},
        "temperatures": [1.0],
        "judge": {"enabled": True},
    }
    assert key_params(config) == {
        "experiment": "e",
        "model.path": "m",
        "model.engine_args": "{}",
        "prompts": '[{"id": "p"}]',
        "decoding.top_k": "50",
    }
    assert config_tags(config) == {"config.temperatures": "[1.0]", "config.judge": '{"enabled": true}'}
    assert flatten({"a": {"b": {"c": 1}}}) == {"a.b.c": "1"}
    assert finite({"x": 1, "y": float("nan"), "z": True, "w": "s", "v": 2.5}) == {"x": 1.0, "v": 2.5}


def test_a_validated_one_model_config_is_tracked_as_written():
    """Validation turns model: into models:; MLflow's params, tags and key still see the model: that was written."""
    from conftest import SCHEMA
    from tempcreativity.config import validate_config
    from tempcreativity.tracking import config_tags, key_params, review_tags

    config = validate_config({"experiment": "e", "model": {"path": "embedded"}}, SCHEMA)
    model_params = {name: value for name, value in key_params(config).items() if name.startswith("model")}
    assert model_params == {
        "model.path": "embedded",
        "model.dtype": "float32",
        "model.max_model_len": "2048",
        "model.tensor_parallel_size": "1",
        "model.device": "auto",
        "model.engine_args": "{}",
    }
    assert not {"config.models", "config.model_given"} & set(config_tags(config))
    listed = validate_config(
        {"experiment": "e", "models": [{"id": "smollm2-135m-instruct", "path": "embedded"}]}, SCHEMA
    )
    assert "models" in key_params(listed) and result_key(listed, "x") != result_key(config, "x")
    assert review_tags("c", config, {})["config_digest"] != review_tags("c", listed, {})["config_digest"]


def test_the_configs_tracking_uri_wins_over_the_environment(monkeypatch, tmp_path):
    from tempcreativity.tracking import tracking_uri

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    assert tracking_uri("http://127.0.0.1:2", tmp_path) == "http://127.0.0.1:2"
    assert tracking_uri(None, tmp_path) == "http://127.0.0.1:1"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking_uri(None, tmp_path) == f"sqlite:///{tmp_path.resolve() / 'results' / 'mlflow.db'}"
