"""Snakemake adapter: the study's two human-evaluation tables for one source of ratings."""

from pathlib import Path

from tempcreativity.logs import log_to

log_to(snakemake.log[0])

import polars as pl

from tempcreativity.io import write_texts_atomic
from tempcreativity.ratings import load_ratings, ratings_tables

judge = snakemake.wildcards.source == "judge"  # one rating per story from one rater: ordinary least squares
random_effects = snakemake.params.random_effects
tables = ratings_tables(
    load_ratings(snakemake.input.ratings, min_participants=1 if judge else 2),
    pl.read_parquet(snakemake.input.scores),
    None if judge or random_effects == "auto" else random_effects,
)
write_texts_atomic(
    {Path(snakemake.output.descriptives): tables["descriptives"], Path(snakemake.output.lme): tables["lme"]}
)
