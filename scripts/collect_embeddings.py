"""Snakemake adapter: one embedder's vectors of every story, from the generation jobs' shard tables, in grid order."""

from tempcreativity.logs import log_to

log_to(snakemake.log[0])

import polars as pl

from tempcreativity.embedding import collect_embeddings
from tempcreativity.io import write_parquet_atomic

story_ids = pl.read_parquet(snakemake.input.stories, columns=["story_id"])["story_id"].to_list()
table = collect_embeddings([pl.read_parquet(path) for path in snakemake.input.shards], story_ids)
write_parquet_atomic(table, snakemake.output.embeddings)
print(f"embedder {snakemake.wildcards.embedder}: {table.height} stories from {len(snakemake.input.shards)} shard(s)")
