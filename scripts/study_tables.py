"""Snakemake adapter: the study's Tables 1 and 2 from its released ratings, and its stories scored (no model)."""

from tempcreativity.logs import log_to

log_to(snakemake.log[0])

from tempcreativity.io import write_texts_atomic
from tempcreativity.study import study_csvs

csvs = study_csvs(snakemake.params.data_dir, snakemake.params.cache_dir)
write_texts_atomic({snakemake.output[name]: text for name, text in csvs.items()})
