"""Snakemake adapter: embed every story with one embedder (cached per story)."""

from tempcreativity.logs import log_to

log_to(snakemake.log[0])

import polars as pl

from tempcreativity.embedding import embed_stories
from tempcreativity.io import write_parquet_atomic
from tempcreativity.model import read_manifest

stories = pl.read_parquet(snakemake.input.stories, columns=["story_id", "text"])
vectors, stats = embed_stories(
    stories["text"].to_list(),
    snakemake.wildcards.embedder,
    read_manifest(snakemake.input.manifest),
    snakemake.params.model,
    snakemake.params.cache_dir,
    snakemake.params.model_embedder,
)
write_parquet_atomic(stories.select("story_id").with_columns(vector=vectors), snakemake.output.embeddings)
print(stats)
