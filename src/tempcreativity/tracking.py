"""Log a pipeline result to MLflow, idempotently: one parent run per result and one child run per cell
(model x prompt x swept settings x temperature), found again by tags on every later run, so that re-running
updates the same runs. Every child has the cell's model id and every sampler setting as params, so that the
MLflow UI's parallel coordinates and group-by work across the cells.

The parent's key is a hash of what defines the stories apart from the grid (experiment, model settings, prompts,
seeding, decoding) and of the models' sha256. Growing the grid (temperatures, seeds) refreshes the same parent and adds
child runs only for the new cells; so do changes to the analysis (scoring, judge, ratings), which are tags."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from tempcreativity.axes import without_quiet_defaults
from tempcreativity.config import as_written
from tempcreativity.io import read_parquet_without
from tempcreativity.progress import bar
from tempcreativity.ratings import RATING_ITEMS

KEY_TAG = "tempcreativity.key"
CELL_TAG = "tempcreativity.cell"
PARENT_TAG = "mlflow.parentRunId"
# The parent's identity, logged as params: everything that decides the stories apart from the grid (the config as
# written: its one model: or its models:, see config.as_written).
KEY_SECTIONS = ("experiment", "model", "models", "prompts", "seeding", "decoding")
BATCH = 100  # MLflow takes at most 100 params (and 1000 metrics) per log_batch call


class TrackingUnavailable(RuntimeError):
    """The tracking server cannot be reached; results on disk are untouched."""


def key_sections(config: dict[str, Any]) -> dict[str, Any]:
    """The config sections of the parent's key, ``decoding`` without the sampler axes added later where they hold
    their defaults (axes.without_quiet_defaults), so that adding an axis keeps every earlier run's parent."""
    config = as_written(config)
    sections = {name: config[name] for name in KEY_SECTIONS if name in config}
    if "decoding" in sections:
        sections["decoding"] = without_quiet_defaults(sections["decoding"])
    return sections


def result_key(config: dict[str, Any], model_sha256: str) -> str:
    import hashlib

    identity = key_sections(config)
    canonical = json.dumps({"config": identity, "model_sha256": model_sha256}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def local_store(workdir: Path) -> tuple[str, str]:
    """The local MLflow store under results/: its sqlite URI and its artifact location."""
    results = (workdir / "results").resolve()
    return f"sqlite:///{results / 'mlflow.db'}", (results / "mlartifacts").as_uri()


def tracking_uri(configured: str | None, workdir: Path) -> str:
    """The config's mlflow.tracking_uri when set, else MLFLOW_TRACKING_URI, else a sqlite store under results/
    (the config is the more specific choice, as the schema and README say)."""
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or local_store(workdir)[0]


def check_reachable(uri: str, attempts: int = 3, wait_seconds: float = 2.0) -> None:
    """For a server URI, ask its /health endpoint a bounded number of times; raise TrackingUnavailable if it
    never answers. Local stores (sqlite, files) need no check."""
    if not uri.startswith(("http://", "https://")):
        return
    import requests

    error: Exception | None = None
    for attempt in range(attempts):
        try:
            if requests.get(uri.rstrip("/") + "/health", timeout=5).ok:
                return
        except requests.RequestException as caught:
            error = caught
        if attempt + 1 < attempts:
            time.sleep(wait_seconds)
    raise TrackingUnavailable(
        f"MLflow server at {uri} is unreachable after {attempts} attempts ({error}). Every result is on disk; "
        "run the pipeline again (only the tracking step will run) once the server is up."
    )


def key_params(config: dict[str, Any]) -> dict[str, str]:
    """The parent's params: the config sections of its key, flattened (params never change within a run)."""
    return flatten(key_sections(config))


def config_tags(config: dict[str, Any]) -> dict[str, str]:
    """Everything else in the config as tags (which may change): the grid, scoring, judge, ratings."""
    return {
        f"config.{name}": json.dumps(value) for name, value in as_written(config).items() if name not in KEY_SECTIONS
    }


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config as dotted keys with string values (MLflow params)."""
    flat: dict[str, str] = {}
    for name, value in values.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict) and value:
            flat |= flatten(value, f"{key}.")
        else:
            flat[key] = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return flat


def finite(metrics: dict[str, Any]) -> dict[str, float]:
    """Only numeric, finite metrics (MLflow stores numbers; nan would hide in the charts)."""
    kept = {}
    for name, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            kept[name] = float(value)
    return kept


def cell_name(row: dict[str, Any], model: bool = False, axes: Iterable[str] = ()) -> str:
    """'story T=1', with the model id first where the grid has several and each swept setting after."""
    from tempcreativity.cells import value_text

    parts = ([row["model_id"]] if model else []) + [row["prompt_id"], f"T={row['temperature']:g}"]
    return " ".join(parts + [f"{name}={value_text(row[name])}" for name in axes])


def models_sha256(manifests: dict[str, dict[str, Any]]) -> str:
    """What the parent's key holds of the weights: the one model's sha256, or the models' joined in id order."""
    if len(manifests) == 1:
        return next(iter(manifests.values()))["sha256"]
    return ",".join(f"{model_id}={manifest['sha256']}" for model_id, manifest in sorted(manifests.items()))


STORY_TABLE = "stories.json"  # each child's per-story table (mlflow.log_table), readable in the run's page


def story_table(generations: pl.DataFrame, scores: pl.DataFrame, judge: pl.DataFrame | None) -> pl.DataFrame:
    """One row per story (exemplars included, as the reference): story id, prompt, temperature, seed index and
    the seed passed to vLLM, the text, every score, and the judge's ratings where the judge ran."""
    # (the vLLM seed as text: a browser's numbers would round a 63-bit integer)
    from tempcreativity.axes import SAMPLER_AXES
    from tempcreativity.scoring import SCORE_LABELS

    identity = [name for name in ("model_id", "prompt_id", *SAMPLER_AXES) if name in generations.columns]
    table = generations.select(
        "story_id", *identity, "temperature", "seed", pl.col("sampling_seed").cast(pl.String), "is_exemplar", "text"
    )
    table = table.join(
        scores.select("story_id", *[name for name in SCORE_LABELS if name in scores.columns]), on="story_id", how="left"
    )
    if judge is not None:
        ratings = judge.select("story_id", *[pl.col(item).alias(f"judge_{item}") for item in RATING_ITEMS])
        table = table.join(ratings, on="story_id", how="left")
    return table


def cell_runs(
    config: dict[str, Any],
    manifests: dict[str, dict[str, Any]],
    generations: pl.DataFrame,
    summary: pl.DataFrame,
    shard_stats: list[dict[str, Any]],
    stories_table: pl.DataFrame | None = None,
) -> list[dict[str, Any]]:
    """Params, metrics, tags and per-story table of every cell (``manifests`` by model id). A param is not also
    a metric; the judge's mean ratings are metrics where the judge ran."""
    from tempcreativity.axes import SAMPLER_AXES
    from tempcreativity.cells import cell_keys, swept_axes

    generated = [stats for stats in shard_stats if stats.get("generated", 0) > 0 and stats.get("generate_seconds")]
    rate = (
        sum(s["generated_tokens"] for s in generated) / sum(s["generate_seconds"] for s in generated)
        if generated
        else None
    )
    stories = generations.filter(~pl.col("is_exemplar"))
    keys, axes = cell_keys(summary), swept_axes(summary)
    several = len(manifests) > 1
    default_id = next(iter(manifests))
    cells = []
    for row in summary.iter_rows(named=True):
        in_cell = pl.all_horizontal([pl.col(key) == row[key] for key in keys])
        cell = stories.filter(in_cell)
        tokens = int(cell["num_tokens"].sum())
        metrics = {name: value for name, value in row.items() if name not in (*keys, "n")}
        metrics |= {"tokens_generated": tokens, "n_stories": cell.height}
        table = None
        if stories_table is not None:
            exemplar_of_cell = pl.col("is_exemplar") & pl.all_horizontal(
                [pl.col(key) == row[key] for key in ("model_id", "prompt_id") if key in keys]
            )
            table = stories_table.filter(in_cell & ~pl.col("is_exemplar") | exemplar_of_cell)
            rated = table.filter(~pl.col("is_exemplar"))
            metrics |= {
                f"judge_{item}_mean": rated[f"judge_{item}"].mean()
                for item in RATING_ITEMS
                if f"judge_{item}" in rated.columns
            }
        if rate:
            metrics |= {"tokens_per_second": rate, "generation_seconds": tokens / rate}
        model_id = row.get("model_id", default_id)
        sampler = {name: cell[name][0] for name in SAMPLER_AXES}  # every story of a cell shares its settings
        cells.append(
            {
                "name": cell_name(row, several, axes),
                "params": {
                    "model": manifests[model_id]["model"],
                    "model_sha256": manifests[model_id]["sha256"],
                    "model_id": model_id,
                    "prompt_id": row["prompt_id"],
                    "temperature": str(row["temperature"]),
                    "seeding": config["seeding"],
                    **{name: str(value) for name, value in sampler.items()},
                    "max_tokens": str(config["decoding"]["max_tokens"]),
                    "stop": json.dumps(config["decoding"]["stop"]),
                },
                "metrics": finite(metrics),
                "tags": {"seeds": json.dumps(sorted(cell["seed"].to_list()))},
                "table": table,
            }
        )
    return cells


def parent_metrics(
    trends: pl.DataFrame,
    ratings: dict[str, tuple[pl.DataFrame, pl.DataFrame]],
    generations: pl.DataFrame,
    shard_stats: list[dict[str, Any]],
) -> dict[str, float]:
    """Experiment-level statistics: correlations and slopes with temperature, the ratings tables, totals."""
    metrics: dict[str, Any] = {}
    groups = trends.select([name for name in ("axis", "model_id", "within") if name in trends.columns]).unique()
    for row in trends.iter_rows(named=True):
        prefix = "" if groups.height <= 1 else trend_metric_prefix(row)
        for column in ("rho", "rho_ci_low", "rho_ci_high", "p_value", "slope", "slope_ci_low", "slope_ci_high"):
            metrics[f"{prefix}{column}.{row['score']}"] = row[column]
    for source, (descriptives, lme) in ratings.items():
        for row in descriptives.iter_rows(named=True):
            metrics |= {
                f"ratings.{source}.{row['item']}.{name}": row[name]
                for name in ("mean", "sd", "cronbach_alpha", "krippendorff_alpha", "icc")
                if name in row
            }
        for row in lme.iter_rows(named=True):
            model = row.get("random_effects", "participant")  # participant, crossed or none (the judge)
            for name in ("beta", "se", "p", "r2m", "r2c", "r2m_nakagawa", "r2c_nakagawa"):
                metrics[f"ratings.{source}.{model}.{row['rating']}.{row['predictor']}.{name}"] = row[name]
    metrics |= {"stories": generations.height, "tokens": int(generations["num_tokens"].sum())}
    generated = [stats for stats in shard_stats if stats.get("generated", 0) > 0]
    if generated:
        metrics |= {
            "generation_seconds": sum(s["generate_seconds"] for s in generated),
            "engine_start_seconds": sum(s["engine_start_seconds"] for s in generated),
        }
    return finite(metrics)


def trend_metric_prefix(row: dict[str, Any]) -> str:
    """Where a trend row of a swept grid was fitted, as a metric-name prefix: 'temperature/model-a/min-p 0.1/'
    (MLflow allows letters, digits, '_', '-', '.', ' ', ':' and '/' in names)."""
    import re

    parts = [row.get("axis", "temperature"), row.get("model_id", ""), row.get("within", "").replace(", ", " ")]
    return "".join(re.sub(r"[^A-Za-z0-9_. :/-]", "-", part) + "/" for part in parts if part)


def _batches(items: list, size: int = BATCH) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _log(
    client, run_id: str, params: dict[str, str], metrics: dict[str, float], tags: dict[str, str], timestamp_ms: int
) -> None:
    from mlflow.entities import Metric, Param, RunTag

    for chunk in _batches([Param(k, v[:6000]) for k, v in params.items()]):
        client.log_batch(run_id, params=chunk)
    for chunk in _batches([Metric(k, v, timestamp_ms, 0) for k, v in metrics.items()]):
        client.log_batch(run_id, metrics=chunk)
    for chunk in _batches([RunTag(k, v) for k, v in tags.items()]):
        client.log_batch(run_id, tags=chunk)


def _find_or_create(
    client, experiment_id: str, filter_string: str, tags: dict[str, str], name: str
) -> tuple[str, bool]:
    found = client.search_runs([experiment_id], filter_string=filter_string, max_results=2)
    if found:
        return found[0].info.run_id, False
    return client.create_run(experiment_id, tags=tags, run_name=name).info.run_id, True


def review_tags(git_commit: str, config: dict[str, Any], versions: dict[str, str]) -> dict[str, str]:
    """Tags every run gets, for the MLflow UI's source column and for finding runs: the git commit (MLflow's own
    ``mlflow.source.git.commit``), the config's digest, the vLLM version and, under SLURM, the job id."""
    import hashlib

    digest = hashlib.sha256(json.dumps(as_written(config), sort_keys=True, default=str).encode()).hexdigest()[:16]
    tags = {
        "mlflow.source.name": "tempcreativity Snakefile",
        "mlflow.source.git.commit": git_commit,
        "config_digest": digest,
        "vllm_version": versions.get("vllm", ""),
    }
    if os.environ.get("SLURM_JOB_ID"):
        tags["slurm_job_id"] = os.environ["SLURM_JOB_ID"]
    return tags


def prompts_dataset(config: dict[str, Any]):
    """The experiment's prompts as an MLflow dataset (name ``prompts``, with its digest), logged as the runs'
    input."""
    import mlflow.data

    prompts = pl.DataFrame(
        [
            {
                "id": p["id"],
                "text": p["text"],
                "system": p.get("system"),
                "assistant_prefix": p.get("assistant_prefix", ""),
                "format": p.get("format", "chat"),
            }
            for p in config["prompts"]
        ]
    )
    return mlflow.data.from_pandas(prompts.to_pandas(), name="prompts")


def _log_table(client, run_id: str, table: pl.DataFrame) -> None:
    """The per-story table as MLflow's ``log_table`` writes it (a JSON "split" table, tagged so that the UI shows
    it as a table), but replacing the file: ``log_table`` appends to an existing table, which would repeat every
    story on each re-run."""
    import tempfile

    from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_ARTIFACTS

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / STORY_TABLE
        table.to_pandas().to_json(path, orient="split", index=False, date_format="iso")
        client.log_artifact(run_id, str(path))
    logged = json.loads(client.get_run(run_id).data.tags.get(MLFLOW_LOGGED_ARTIFACTS, "[]"))
    if {"path": STORY_TABLE, "type": "table"} not in logged:
        client.set_tag(run_id, MLFLOW_LOGGED_ARTIFACTS, json.dumps([*logged, {"path": STORY_TABLE, "type": "table"}]))


def _log_input(client, run_id: str, dataset) -> None:
    """Log ``dataset`` as the run's input once (a re-run finds it by its digest)."""
    from mlflow.entities import DatasetInput, InputTag

    logged = client.get_run(run_id).inputs.dataset_inputs
    if any(item.dataset.digest == dataset.digest and item.dataset.name == dataset.name for item in logged):
        return
    client.log_inputs(run_id, [DatasetInput(dataset._to_mlflow_entity(), [InputTag("mlflow.data.context", "prompts")])])


def track_result(
    *,
    uri: str,
    experiment: str,
    artifact_location: str | None,
    key: str,
    params: dict[str, str],
    metrics: dict[str, float],
    tags: dict[str, str],
    artifacts: dict[str, list[Path]],
    cells: list[dict[str, Any]],
    timestamp_ms: int,
    common_tags: dict[str, str] | None = None,
    dataset=None,
) -> dict[str, Any]:
    """Create or update the parent run and its cell runs; return their ids. Metrics carry ``timestamp_ms``
    (the results' time), so logging the same results again adds no duplicate points to their history.
    ``common_tags`` go on every run, ``dataset`` (the prompts) is every run's input, and a cell's ``table`` is
    logged as its per-story table (STORY_TABLE)."""
    from mlflow.tracking import MlflowClient

    check_reachable(uri)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")  # bounded: a dead server fails in seconds
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment, artifact_location)
    parent_id, created = _find_or_create(
        client, experiment_id, f"tags.`{KEY_TAG}` = '{key}'", {KEY_TAG: key}, f"{experiment} {key[:8]}"
    )
    common_tags = common_tags or {}
    _log(client, parent_id, params, metrics, tags | common_tags, timestamp_ms)
    if dataset is not None:
        _log_input(client, parent_id, dataset)
    for folder, paths in artifacts.items():
        for path in paths:
            client.log_artifact(parent_id, str(path), artifact_path=folder or None)
    children = {}
    for cell in bar(cells, "MLflow child runs", "run"):
        child_id, _ = _find_or_create(
            client,
            experiment_id,
            f"tags.`{PARENT_TAG}` = '{parent_id}' and tags.`{CELL_TAG}` = '{cell['name']}'",
            {PARENT_TAG: parent_id, CELL_TAG: cell["name"]},
            cell["name"],
        )
        _log(client, child_id, cell["params"], cell["metrics"], cell["tags"] | common_tags, timestamp_ms)
        if dataset is not None:
            _log_input(client, child_id, dataset)
        if cell.get("table") is not None:
            _log_table(client, child_id, cell["table"])
        client.set_terminated(child_id, "FINISHED")
        children[cell["name"]] = child_id
    client.set_terminated(parent_id, "FINISHED")
    return {
        "tracking_uri": uri,
        "experiment_id": experiment_id,
        "parent_run_id": parent_id,
        "parent_created": created,
        "child_run_ids": children,
    }


def run_tags(config: dict[str, Any], weights: str, git: dict[str, Any], versions: dict[str, str]) -> dict[str, str]:
    """The parent run's own tags: the models' sha256 (``weights``, models_sha256's), the config outside the key
    (config_tags), the git commit and dirty flag (``git``, provenance.git_state's), this machine's name and every
    package version (``versions``, provenance.package_versions')."""
    import platform

    return {
        "model_sha256": weights,
        **config_tags(config),
        "git.commit": git["commit"],
        "git.dirty": str(git["dirty"]),
        "host": platform.node(),
        **{f"version.{name}": version for name, version in versions.items()},
    }


def artifact_paths(inputs: Mapping[str, Any], rating_sources: list[str], config_file: Path) -> dict[str, list[Path]]:
    """The parent run's artifacts by folder ('' for the top): the run's config (``config_file``) and tables, the
    figures, the report, the judge's ratings and its comparison with people where the judge ran, and each source's
    ratings tables. ``inputs`` and ``rating_sources`` as ``track`` takes them."""
    return {
        "": [config_file, *(Path(inputs[name]) for name in ("stories", "scores", "summary", "trends", "frontier"))],
        "figures": [Path(path) for path in [*inputs["figures"], inputs["frontier_png"]]],
        "report": [Path(inputs["report"])],
        "ratings": [Path(inputs[name]) for name in ("judge_ratings", "judge_vs_people") if inputs.get(name)],
        **{
            f"ratings/{source}": [Path(descriptives), Path(lme)]
            for source, descriptives, lme in zip(rating_sources, inputs["ratings_descriptives"], inputs["ratings_lme"])
        },
    }


def track(
    inputs: Mapping[str, Any],
    config: dict[str, Any],
    rating_sources: list[str],
    config_file: Path,
    workdir: Path,
    source_dir: Path,
) -> dict[str, Any]:
    """Log a run's results to MLflow, read from its files (what the track_mlflow rule's script does): the parent
    run and one child per cell, through ``track_result``, to the config's mlflow.tracking_uri, else
    MLFLOW_TRACKING_URI, else the local store under ``workdir``/results.

    Args:
        inputs: the rule's input paths by name (``snakemake.input``, or a plain dict): manifests (every generating
            model's, in the order of the config's models), stories, scores, summary, trends, figures (the PNGs),
            frontier, frontier_png, report, shard_stats (every shard's), and one path per source of ratings in
            ratings_descriptives and ratings_lme; judge_ratings and judge_vs_people when the judge ran.
        config: the run's config.
        rating_sources: the sources of the ratings tables, in their order (human, judge).
        config_file: the run's config as written for the run's record, logged as an artifact.
        workdir: the folder the run's paths are relative to.
        source_dir: the workflow's folder, whose git commit the runs are tagged with.

    Returns:
        track_result's ids: tracking_uri, experiment_id, parent_run_id, parent_created, child_run_ids.
    """
    from tempcreativity.model import read_manifest
    from tempcreativity.provenance import git_state, package_versions

    manifests = {model["id"]: read_manifest(path) for model, path in zip(config["models"], inputs["manifests"])}
    weights = models_sha256(manifests)
    # (the runs log no token: the token lists are most of the table's memory)
    generations = read_parquet_without(inputs["stories"], {"token_ids", "logprobs", "top_logprobs"})
    summary = pl.read_parquet(inputs["summary"])
    shard_stats = [json.loads(Path(path).read_text()) for path in inputs["shard_stats"]]
    ratings = {
        source: (pl.read_csv(descriptives), pl.read_csv(lme))
        for source, descriptives, lme in zip(rating_sources, inputs["ratings_descriptives"], inputs["ratings_lme"])
    }
    uri = tracking_uri(config["mlflow"]["tracking_uri"], workdir)
    git = git_state(source_dir)
    versions = package_versions()
    judge = pl.read_csv(inputs["judge_ratings"]) if inputs.get("judge_ratings") else None
    table = story_table(generations, pl.read_parquet(inputs["scores"]), judge)
    return track_result(
        uri=uri,
        experiment=config["experiment"],
        artifact_location=local_store(workdir)[1] if uri.startswith("sqlite:") else None,
        key=result_key(config, weights),
        params=key_params(config),
        metrics=parent_metrics(pl.read_parquet(inputs["trends"]), ratings, generations, shard_stats),
        tags=run_tags(config, weights, git, versions),
        artifacts=artifact_paths(inputs, rating_sources, config_file),
        cells=cell_runs(config, manifests, generations, summary, shard_stats, table),
        common_tags=review_tags(git["commit"], config, versions),
        dataset=prompts_dataset(config),
        timestamp_ms=int(Path(inputs["summary"]).stat().st_mtime * 1000),
    )
