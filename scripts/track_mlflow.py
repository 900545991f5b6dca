"""Snakemake adapter: log the result to MLflow (parent run + one child per cell)."""

import json
import platform
from pathlib import Path

from tempcreativity.logs import log_to

log_to(snakemake.log[0])

import polars as pl
import yaml

from tempcreativity.config import as_written
from tempcreativity.io import write_json_atomic, write_text_atomic
from tempcreativity.model import read_manifest
from tempcreativity.provenance import git_state, package_versions
from tempcreativity.tracking import (
    cell_runs,
    config_tags,
    key_params,
    local_store,
    models_sha256,
    parent_metrics,
    prompts_dataset,
    result_key,
    review_tags,
    story_table,
    track_result,
    tracking_uri,
)

config = snakemake.params.config
manifests = {model["id"]: read_manifest(path) for model, path in zip(config["models"], snakemake.input.manifests)}
weights = models_sha256(manifests)
generations = pl.read_parquet(snakemake.input.stories)
shard_stats = [json.loads(Path(path).read_text()) for path in snakemake.input.shard_stats]
ratings = {
    source: (pl.read_csv(descriptives), pl.read_csv(lme))
    for source, descriptives, lme in zip(
        snakemake.params.rating_sources, snakemake.input.ratings_descriptives, snakemake.input.ratings_lme
    )
}
workdir = Path.cwd()
uri = tracking_uri(snakemake.params.tracking_uri, workdir)
_, local_artifacts = local_store(workdir)
config_file = Path(snakemake.output.config)
write_text_atomic(yaml.safe_dump(as_written(config), sort_keys=False), config_file)
git = git_state(Path(snakemake.scriptdir).parent)
versions = package_versions()
judge = pl.read_csv(snakemake.input.judge_ratings) if "judge_ratings" in snakemake.input.keys() else None
table = story_table(generations, pl.read_parquet(snakemake.input.scores), judge)
runs = track_result(
    uri=uri,
    experiment=config["experiment"],
    artifact_location=local_artifacts if uri.startswith("sqlite:") else None,
    key=result_key(config, weights),
    params=key_params(config),
    metrics=parent_metrics(pl.read_parquet(snakemake.input.trends), ratings, generations, shard_stats),
    tags={
        "model_sha256": weights,
        **config_tags(config),
        "git.commit": git["commit"],
        "git.dirty": str(git["dirty"]),
        "host": platform.node(),
        **{f"version.{name}": version for name, version in versions.items()},
    },
    artifacts={
        "": [
            config_file,
            Path(snakemake.input.stories),
            Path(snakemake.input.scores),
            Path(snakemake.input.summary),
            Path(snakemake.input.trends),
            Path(snakemake.input.frontier),
        ],
        "figures": [Path(path) for path in [*snakemake.input.figures, snakemake.input.frontier_png]],
        "report": [Path(snakemake.input.report)],
        "ratings": [
            Path(snakemake.input[name])
            for name in ("judge_ratings", "judge_vs_people")
            if name in snakemake.input.keys()
        ],
        **{
            f"ratings/{source}": [Path(descriptives), Path(lme)]
            for source, descriptives, lme in zip(
                snakemake.params.rating_sources, snakemake.input.ratings_descriptives, snakemake.input.ratings_lme
            )
        },
    },
    cells=cell_runs(config, manifests, generations, pl.read_parquet(snakemake.input.summary), shard_stats, table),
    common_tags=review_tags(git["commit"], config, versions),
    dataset=prompts_dataset(config),
    timestamp_ms=int(Path(snakemake.input.summary).stat().st_mtime * 1000),
)
write_json_atomic(runs, snakemake.output.runs)
write_text_atomic(f"logged to {uri}: parent run {runs['parent_run_id']}\n", snakemake.output.logged)  # last
print(json.dumps(runs, indent=2))
