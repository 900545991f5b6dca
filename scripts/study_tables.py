"""Snakemake adapter: the study's Tables 1 and 2 from its released ratings, and its stories scored (no model)."""

from tempcreativity.logs import log_to

log_to(snakemake.log[0])

from tempcreativity.io import write_texts_atomic
from tempcreativity.study import score_study_stories, study_tables

tables = study_tables(snakemake.params.data_dir)
scores = score_study_stories(snakemake.params.data_dir, snakemake.params.cache_dir)
write_texts_atomic({
    snakemake.output.table1: tables["table1"].write_csv(float_precision=6),
    snakemake.output.table2: tables["table2"].write_csv(float_precision=6),
    snakemake.output.story_scores: scores.write_csv(float_precision=6),
})  # fmt: skip
