"""Snakemake adapter: gather the shards into the experiment's generations table, in grid order."""

import polars as pl

from tempcreativity.logs import log_to

log_to(snakemake.log[0])

from tempcreativity.generation import order_stories
from tempcreativity.io import write_parquet_atomic

stories = order_stories([pl.read_parquet(path) for path in snakemake.input.shards], snakemake.params.story_ids)
write_parquet_atomic(stories, snakemake.output.stories)
print(f"{stories.height} stories -> {snakemake.output.stories}")
