"""Snakemake adapter: the study's two human-evaluation tables for one source of ratings."""

from pathlib import Path

from tempcreativity.logs import log_to

log_to(snakemake.log[0])

import polars as pl

from tempcreativity.ratings import load_ratings, write_tables

write_tables(
    load_ratings(snakemake.input.ratings),
    Path(snakemake.output.descriptives).parent,
    pl.read_parquet(snakemake.input.scores),
)
