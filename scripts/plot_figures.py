"""Snakemake adapter: draw the report's figures into the rule's PNG and SVG outputs (matched by name), one at a time."""

from pathlib import Path

from tempcreativity.logs import log_to

log_to(snakemake.log[0])

import polars as pl

from tempcreativity.figures import report_figures, save

png_of = {Path(png).stem: png for png in snakemake.output.png}
svg_of = {Path(svg).stem: svg for svg in snakemake.output.svg}
for name, figure in report_figures(
    pl.read_parquet(snakemake.input.scores),
    pl.read_parquet(snakemake.input.summary),
    pl.read_parquet(snakemake.input.trends),
    pl.read_parquet(snakemake.input.pca),
):
    save(figure, png_of[name], svg_of[name])
