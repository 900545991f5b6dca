"""Snakemake adapter: rate every story with the LLM judge, and the study's 31 rated stories with the same engine
(one rating per story and criterion, in the study's format)."""

from pathlib import Path

from tempcreativity.logs import log_to

log_to(snakemake.log[0], keep_console=True)

import polars as pl

from tempcreativity.io import write_texts_atomic
from tempcreativity.judge import judge_stories
from tempcreativity.model import read_manifest, resolve_judge
from tempcreativity.peeperkorn import load_study_stories

config = snakemake.params.config
embedded = Path(snakemake.input.embedded) if "embedded" in snakemake.input.keys() else None
folder, name, identity = resolve_judge(config, read_manifest(snakemake.input.manifest), embedded)
judge = config["judge"] | {"model_name": name}
story_sets = {
    "experiment": pl.read_parquet(snakemake.input.stories),
    "study": load_study_stories(snakemake.params.data_dir),
}
tables, stats = judge_stories(story_sets, folder, judge, config["model"], identity, snakemake.params.cache_dir)
write_texts_atomic({
    Path(snakemake.output.ratings): tables["experiment"].write_csv(),
    Path(snakemake.output.study_ratings): tables["study"].write_csv(),
})  # fmt: skip
print(f"judge: {stats['answers']} answers, {stats['asked']} asked of the engine, the rest from the cache")
