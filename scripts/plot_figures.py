"""Snakemake adapter: draw the report's figures (PNG and SVG)."""

from pathlib import Path

from tempcreativity.logs import log_to

log_to(snakemake.log[0])

import polars as pl

from tempcreativity.figures import make_figures

make_figures(
    pl.read_parquet(snakemake.input.scores),
    pl.read_parquet(snakemake.input.summary),
    pl.read_parquet(snakemake.input.trends),
    pl.read_parquet(snakemake.input.pca),
    Path(snakemake.output.png[0]).parent,
)
