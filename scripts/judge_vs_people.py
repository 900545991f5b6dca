"""Snakemake adapter: the judge's ratings of the study's 31 stories against the study's people (table and figure)."""

from tempcreativity.logs import log_to

log_to(snakemake.log[0])

import polars as pl

from tempcreativity.figures import judge_vs_people_figure, save
from tempcreativity.io import write_text_atomic
from tempcreativity.judge_validation import judge_vs_people, pairs
from tempcreativity.ratings import load_ratings

judge = pl.read_csv(snakemake.input.judge)
people = load_ratings(snakemake.input.people)
table = judge_vs_people(judge, people, snakemake.params.resamples)
save(judge_vs_people_figure(pairs(judge, people)), snakemake.output.png, snakemake.output.svg)
write_text_atomic(table.write_csv(float_precision=6), snakemake.output.table)
