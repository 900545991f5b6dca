"""Snakemake adapter: generate one shard's stories (the log is also shown live, with vLLM's progress bar)."""

from tempcreativity.logs import log_to

log_to(snakemake.log[0], keep_console=True)

from tempcreativity.generation import generate_stories
from tempcreativity.io import write_json_atomic, write_parquet_atomic
from tempcreativity.model import read_manifest

stories, stats = generate_stories(
    list(snakemake.params.plan.requests),
    snakemake.params.settings,
    {model_id: read_manifest(path) for model_id, path in zip(snakemake.params.model_ids, snakemake.input.manifests)},
    snakemake.params.cache_dir,
)
write_parquet_atomic(stories, snakemake.output.stories)
write_json_atomic({"shard": int(snakemake.wildcards.shard), **stats}, snakemake.output.stats)
print(f"shard {snakemake.wildcards.shard}: {stats['cached']} stories from the cache, {stats['generated']} generated")
