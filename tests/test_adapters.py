"""The library side of the report's and the tracking step's Snakemake scripts: report.build and tracking.track read a
run's files, named as the rules name their inputs (a plain dict here, snakemake.input there), without Snakemake.
The files are small and hand-made: one prompt, two temperatures, four seeds, people's and the judge's ratings."""

from __future__ import annotations

import base64
import copy
import json
import platform
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from conftest import REPO, SCHEMA
from tempcreativity.axes import DEFAULTS
from tempcreativity.config import validate_config
from tempcreativity.frontier import frontier_table
from tempcreativity.judge_validation import judge_vs_people
from tempcreativity.provenance import git_state
from tempcreativity.ratings import RATING_ITEMS, load_ratings, ratings_tables
from tempcreativity.report import build
from tempcreativity.scoring import score_stories
from tempcreativity.statistics import summarise, trends
from tempcreativity.tracking import artifact_paths, run_tags, track

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
WORDS = "the a cat dog sat ran under over moon rain quiet loud river stone dream light".split()
MODEL_NAME = "SmolLM2-135M-Instruct (its manifest)"
RUN = {
    "experiment": "adapters",
    "model": {"path": "embedded"},
    "prompts": [{"id": "story", "text": "Write it."}],
    "temperatures": [0.5, 1.0],
    "seeds": 4,
    "scoring": {"bootstrap_resamples": 100, "embedders": ["minilm"]},
}


def story(rng: np.random.Generator, model_id: str, temperature: float, seed: int | None) -> dict:
    text = " ".join(rng.choice(WORDS, 6 + int(4 * temperature)))
    count = len(text.split()) + 1
    logprobs = np.log(rng.uniform(0.1, 1.0, count)).tolist()
    return {
        "story_id": f"story:T{temperature}:s{seed}" if seed is not None else "story:exemplar",
        "model_id": model_id,
        "prompt_id": "story",
        "temperature": temperature,
        "seed": seed,
        "is_exemplar": seed is None,
        "sampling_seed": 1,
        **DEFAULTS,
        "text": text,
        "token_ids": list(range(count)),
        "logprobs": logprobs,
        "top_logprobs": logprobs,
        "num_tokens": count,
        "finish_reason": "length",
    }


def ratings(rng: np.random.Generator, stories: pl.DataFrame, raters: list[str]) -> pl.DataFrame:
    """One rating per story, rater and criterion, rising with temperature."""
    rows = [
        {
            "story_id": row["story_id"],
            "temperature": row["temperature"],
            "participant_id": rater,
            **{item: float(np.clip(2 + 2 * row["temperature"] + rng.normal(0, 0.7), 1, 5)) for item in RATING_ITEMS},
        }
        for row in stories.iter_rows(named=True)
        for rater in raters
    ]
    return pl.DataFrame(rows)


def write_run(folder: Path, config: dict) -> dict:
    """A finished run's files, as build_report and track_mlflow name their inputs."""
    rng = np.random.default_rng(0)
    model_id = config["models"][0]["id"]
    generations = pl.DataFrame(
        [story(rng, model_id, 0.0, None)] + [story(rng, model_id, t, seed) for t in (0.5, 1.0) for seed in range(4)]
    )
    vectors = rng.normal(size=(generations.height, 4))
    scores = score_stories(generations, {"minilm": vectors})
    stories = generations.filter(~pl.col("is_exemplar"))
    people, judge = ratings(rng, stories, ["person-0", "person-1"]), ratings(rng, stories, ["judge"])
    paths = {
        name: folder / name
        for name in (
            "generations.parquet",
            "scores.parquet",
            "summary.parquet",
            "trends.parquet",
            "frontier.parquet",
            "people.csv",
            "judge_ratings.csv",
            "judge_vs_people.csv",
            "table1.csv",
            "table2.csv",
            "story_scores.csv",
            "manifest.json",
            "shard-0.stats.json",
            "index.html",
        )
    }
    generations.write_parquet(paths["generations.parquet"])
    scores.write_parquet(paths["scores.parquet"])
    summarise(scores, generations["text"], vectors, 100).write_parquet(paths["summary.parquet"])
    trends(scores, 100).write_parquet(paths["trends.parquet"])
    frontier_table(scores, vectors, 100).write_parquet(paths["frontier.parquet"])
    people.write_csv(paths["people.csv"])
    judge.write_csv(paths["judge_ratings.csv"])
    judge_vs_people(judge, people, 100).write_csv(paths["judge_vs_people.csv"])
    pl.DataFrame(
        {
            "item": ["novelty"],
            "mean": [3.1],
            "sd": [0.9],
            "paper_sd": [0.91],
            "cronbach_alpha": [0.8],
            "paper_cronbach_alpha": [0.81],
            "krippendorff_alpha": [0.4],
            "icc": [0.3],
        }
    ).write_csv(paths["table1.csv"])
    pl.DataFrame(
        {
            "random_effects": ["participant"],
            "rating": ["novelty"],
            "beta": [0.5],
            "paper_beta": [0.52],
            "se": [0.1],
            "paper_se": [0.11],
            "p": [0.01],
            "r2c": [0.3],
            "paper_r2c": [0.31],
            "r2m": [0.02],
            "paper_r2m": [0.021],
        }
    ).write_csv(paths["table2.csv"])
    scores.select("temperature", "is_exemplar", "edit_distance", "cosine_minilm").write_csv(paths["story_scores.csv"])
    paths["manifest.json"].write_text(
        json.dumps({"model": MODEL_NAME, "sha256": "abc123", "folder": "/m", "config_path": "embedded"})
    )
    stats = {"generated": 16, "generated_tokens": 200, "generate_seconds": 4.0, "engine_start_seconds": 9.0}
    paths["shard-0.stats.json"].write_text(json.dumps(stats))
    paths["index.html"].write_text("<html>the report</html>")
    figures = [
        folder / f"{name}.png"
        for name in (
            "boxplots",
            "pca",
            "diversity",
            "trends",
            "frontier",
            "forest-human",
            "forest-judge",
            "judge_vs_people",
        )
    ]
    for figure in figures:
        figure.write_bytes(PNG)
    tables = {}
    # (people's with a random intercept per participant only: the crossed model takes seconds to fit)
    for source, frame, participants, random_effects in (("human", people, 2, "participant"), ("judge", judge, 1, None)):
        (folder / f"{source}.csv").write_text(frame.write_csv())
        rated = load_ratings(folder / f"{source}.csv", min_participants=participants)
        texts = ratings_tables(rated, scores, random_effects)
        for name, text in texts.items():
            tables[source, name] = folder / f"{source}-{name}.csv"
            tables[source, name].write_text(text)
    return {
        "manifest": str(paths["manifest.json"]),
        "manifests": [str(paths["manifest.json"])],
        "stories": str(paths["generations.parquet"]),
        "scores": str(paths["scores.parquet"]),
        "summary": str(paths["summary.parquet"]),
        "trends": str(paths["trends.parquet"]),
        "figures": [str(figure) for figure in figures[:4]],
        "frontier": str(paths["frontier.parquet"]),
        "frontier_png": str(figures[4]),
        "ratings_descriptives": [str(tables[source, "descriptives"]) for source in ("human", "judge")],
        "ratings_lme": [str(tables[source, "lme"]) for source in ("human", "judge")],
        "ratings_forest": [str(figures[5]), str(figures[6])],
        "study_table1": str(paths["table1.csv"]),
        "study_table2": str(paths["table2.csv"]),
        "study_scores": str(paths["story_scores.csv"]),
        "judge_ratings": str(paths["judge_ratings.csv"]),
        "judge_vs_people": str(paths["judge_vs_people.csv"]),
        "judge_vs_people_png": str(figures[7]),
        "shard_stats": [str(paths["shard-0.stats.json"])],
        "report": str(paths["index.html"]),
    }


def config(**sections) -> dict:
    return validate_config(copy.deepcopy(RUN) | sections, SCHEMA)


@pytest.fixture(scope="module")
def run_inputs(tmp_path_factory) -> dict:
    return write_run(tmp_path_factory.mktemp("run"), config(judge={"enabled": True}))


def test_the_report_is_built_from_the_rules_input_files(run_inputs):
    files = {"stories, tokens and log-probabilities": "results/adapters/generations.parquet"}
    html = build(
        run_inputs,
        config(judge={"enabled": True}),
        files=files,
        rating_sources=["human", "judge"],
        survey=None,
        source_dir=REPO,
    )
    assert "<h2>Ratings by people</h2>" in html and "<h2>Ratings by an LLM judge</h2>" in html
    assert f"produced by a language model ({MODEL_NAME}), not by people" in html  # the judge is the generator
    assert "it rates its own writing" in html
    assert "The judge against the study's people</h2>" in html
    assert html.count('src="data:image/png;base64,') == 8  # 4 figures, the frontier, 2 forest plots, judge vs people
    assert "results/adapters/generations.parquet" in html and git_state(REPO)["commit"] in html
    assert "Planning a human evaluation" not in html  # no survey


def test_a_judge_that_is_another_model_is_named_by_its_path(run_inputs):
    """Without people's ratings and the judge's check against the study's people, their sections are left out."""
    inputs = {name: path for name, path in run_inputs.items() if not name.startswith("judge_vs_people")}
    inputs |= {name: run_inputs[name][1:] for name in ("ratings_descriptives", "ratings_lme", "ratings_forest")}
    html = build(
        inputs,
        config(judge={"enabled": True, "model": "some/judge"}),
        files={},
        rating_sources=["judge"],
        survey=None,
        source_dir=REPO,
    )
    assert "produced by a language model (some/judge), not by people" in html
    assert "it rates its own writing" not in html
    assert "Ratings by people" not in html and "The judge against the study's people" not in html
    assert html.count('src="data:image/png;base64,') == 6


def test_the_parent_runs_artifacts_are_the_runs_files_by_folder(run_inputs, tmp_path):
    config_file = tmp_path / "config.yaml"
    artifacts = artifact_paths(run_inputs, ["human", "judge"], config_file)
    assert artifacts == {
        "": [config_file, *(Path(run_inputs[name]) for name in ("stories", "scores", "summary", "trends", "frontier"))],
        "figures": [*map(Path, run_inputs["figures"]), Path(run_inputs["frontier_png"])],
        "report": [Path(run_inputs["report"])],
        "ratings": [Path(run_inputs["judge_ratings"]), Path(run_inputs["judge_vs_people"])],
        "ratings/human": [Path(run_inputs["ratings_descriptives"][0]), Path(run_inputs["ratings_lme"][0])],
        "ratings/judge": [Path(run_inputs["ratings_descriptives"][1]), Path(run_inputs["ratings_lme"][1])],
    }
    without_judge = {name: path for name, path in run_inputs.items() if not name.startswith("judge_")}
    artifacts = artifact_paths(without_judge, ["human"], config_file)
    assert artifacts["ratings"] == [] and "ratings/judge" not in artifacts


def test_the_parent_run_is_tagged_with_its_weights_config_commit_machine_and_versions():
    settings = config(judge={"enabled": True})
    tags = run_tags(settings, "abc123", {"commit": "0123abc", "dirty": True}, {"vllm": "0.25.0", "polars": "1.3"})
    assert tags["model_sha256"] == "abc123" and tags["git.commit"] == "0123abc" and tags["git.dirty"] == "True"
    assert tags["host"] == platform.node() and tags["version.vllm"] == "0.25.0" and tags["version.polars"] == "1.3"
    assert tags["config.judge"] == json.dumps(settings["judge"]) and "config.experiment" not in tags  # (a param)


def test_track_logs_the_runs_files_to_the_server(run_inputs, mlflow_server, tmp_path):
    from mlflow.tracking import MlflowClient

    settings = config(judge={"enabled": True}, mlflow={"tracking_uri": mlflow_server.uri})
    config_file = tmp_path / "config.yaml"
    config_file.write_text("experiment: adapters\n")
    runs = track(run_inputs, settings, ["human", "judge"], config_file, workdir=tmp_path, source_dir=REPO)
    client = MlflowClient(mlflow_server.uri)
    parent = client.get_run(runs["parent_run_id"])
    assert runs["tracking_uri"] == mlflow_server.uri and sorted(runs["child_run_ids"]) == ["story T=0.5", "story T=1"]
    assert parent.data.params["experiment"] == "adapters" and parent.data.tags["model_sha256"] == "abc123"
    assert parent.data.tags["git.commit"] == git_state(REPO)["commit"]
    assert "ratings.human.participant.novelty.temperature.beta" in parent.data.metrics
    assert parent.data.metrics["stories"] == 9 and parent.data.metrics["generation_seconds"] == 4.0
    logged = {artifact.path for artifact in client.list_artifacts(parent.info.run_id)}
    assert logged == {
        "config.yaml",
        "generations.parquet",
        "scores.parquet",
        "summary.parquet",
        "trends.parquet",
        "frontier.parquet",
        "figures",
        "report",
        "ratings",
    }
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "ratings")} == {
        "ratings/judge_ratings.csv",
        "ratings/judge_vs_people.csv",
        "ratings/human",
        "ratings/judge",
    }
    child = client.get_run(runs["child_run_ids"]["story T=1"])
    assert child.data.params["temperature"] == "1.0" and child.data.metrics["judge_novelty_mean"] > 0
