"""Snakemake adapter: rate every story with the LLM judge, and the study's 31 rated stories with the same engine
(one rating per story and criterion, in the study's format)."""

from pathlib import Path

from tempcreativity.logs import log_to

log_to(snakemake.log[0], keep_console=True)

import polars as pl

from tempcreativity.io import write_texts_atomic
from tempcreativity.judge import judge_stories
from tempcreativity.model import folder_sha256, read_manifest, resolve_model_folder
from tempcreativity.peeperkorn import load_study_stories

manifest = read_manifest(snakemake.input.manifest)
judge = dict(snakemake.params.judge)
if judge["model"] is None:
    folder, judge["model_name"], identity = manifest["folder"], manifest["model"], manifest["sha256"]
else:
    embedded = Path(snakemake.input.embedded) if "embedded" in snakemake.input.keys() else None
    folder, judge["model_name"] = str(resolve_model_folder(judge["model"], embedded)), judge["model"]
    identity = folder_sha256(Path(folder))
story_sets = {"experiment": pl.read_parquet(snakemake.input.stories), "study": load_study_stories(snakemake.params.data_dir)}
tables, stats = judge_stories(story_sets, folder, judge, snakemake.params.model, identity, snakemake.params.cache_dir)
write_texts_atomic({
    Path(snakemake.output.ratings): tables["experiment"].write_csv(),
    Path(snakemake.output.study_ratings): tables["study"].write_csv(),
})  # fmt: skip
print(f"judge: {stats['answers']} answers, {stats['asked']} asked of the engine, the rest from the cache")
