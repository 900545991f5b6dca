"""Snakemake adapter: the diversity/quality frontier of each sampler, as a table and a figure."""

from tempcreativity.logs import log_to

log_to(snakemake.log[0])

import polars as pl

from tempcreativity.embedding import read_vectors
from tempcreativity.figures import frontier_figure, save
from tempcreativity.frontier import frontier_table
from tempcreativity.io import write_parquet_atomic

scores = pl.read_parquet(snakemake.input.scores)
judge = pl.read_csv(snakemake.input.judge_ratings) if "judge_ratings" in snakemake.input.keys() else None
table = frontier_table(
    scores, read_vectors(snakemake.input.embeddings, scores["story_id"]), snakemake.params.resamples, judge
)
write_parquet_atomic(table, snakemake.output.table)
save(frontier_figure(table), snakemake.output.png, snakemake.output.svg)
