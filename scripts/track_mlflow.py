"""Snakemake adapter: log the result to MLflow (parent run + one child per cell)."""

import json
from pathlib import Path

from tempcreativity.logs import log_to

log_to(snakemake.log[0])

import yaml

from tempcreativity.config import as_written
from tempcreativity.io import write_json_atomic, write_text_atomic
from tempcreativity.tracking import track

config = snakemake.params.config
write_text_atomic(yaml.safe_dump(as_written(config), sort_keys=False), snakemake.output.config)  # (an artifact)
runs = track(
    snakemake.input,
    config,
    snakemake.params.rating_sources,
    config_file=Path(snakemake.output.config),
    workdir=Path.cwd(),
    source_dir=Path(snakemake.scriptdir).parent,
)
write_json_atomic(runs, snakemake.output.runs)
logged = f"logged to {runs['tracking_uri']}: parent run {runs['parent_run_id']}\n"
write_text_atomic(logged, snakemake.output.logged)  # last: a failed step leaves none, and the next run tries again
print(json.dumps(runs, indent=2))
