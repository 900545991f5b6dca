"""Snakemake adapter: forest plot of the mixed models' betas for one source of ratings."""

from tempcreativity.logs import log_to

log_to(snakemake.log[0])

import polars as pl

from tempcreativity.figures import forest_plot, save

save(forest_plot(pl.read_csv(snakemake.input.lme)), snakemake.output.png, snakemake.output.svg)
