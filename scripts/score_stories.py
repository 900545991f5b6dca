"""Snakemake adapter: score every story against the exemplar of its prompt."""

from tempcreativity.logs import log_to

log_to(snakemake.log[0])

import polars as pl

from tempcreativity.embedding import read_vectors
from tempcreativity.io import write_parquet_atomic
from tempcreativity.scoring import score_stories

unread = {"token_ids", "top_logprobs"}  # (the scores do not use them: half the table's memory)
stories = pl.read_parquet(
    snakemake.input.stories,
    columns=[name for name in pl.read_parquet_schema(snakemake.input.stories) if name not in unread],
)
vectors = {
    name: read_vectors(path, stories["story_id"])
    for name, path in zip(snakemake.params.embedders, snakemake.input.embeddings)
}
write_parquet_atomic(score_stories(stories, vectors), snakemake.output.scores)
