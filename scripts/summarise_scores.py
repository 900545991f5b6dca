"""Snakemake adapter: per-temperature summaries, trends with temperature, and the PCA of the embeddings."""

from tempcreativity.logs import log_to

log_to(snakemake.log[0])

import polars as pl

from tempcreativity.embedding import read_vectors
from tempcreativity.io import write_parquet_atomic
from tempcreativity.statistics import pca_2d, summarise, trends

stories = pl.read_parquet(snakemake.input.stories, columns=["story_id", "text"])
scores = pl.read_parquet(snakemake.input.scores)
vectors = read_vectors(snakemake.input.embeddings, scores["story_id"])
resamples = snakemake.params.resamples
write_parquet_atomic(summarise(scores, stories["text"], vectors, resamples), snakemake.output.summary)
write_parquet_atomic(trends(scores, resamples, snakemake.params.seeding), snakemake.output.trends)
write_parquet_atomic(pca_2d(scores, vectors), snakemake.output.pca)
