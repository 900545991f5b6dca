"""Snakemake adapter: generate one shard's stories (the log is also shown live, with vLLM's progress bar); when the
judge is the first generating model, ask its questions on the same engine too (params.judge); then embed the
stories into the embedding cache while vLLM is loaded (params.embedding), for the embedding jobs to read."""

from tempcreativity.logs import log_to

log_to(snakemake.log[0], keep_console=True)

from tempcreativity.embedding import fill_embedding_cache
from tempcreativity.generation import generate_stories
from tempcreativity.io import write_json_atomic, write_parquet_atomic
from tempcreativity.judge import judge_on_engine
from tempcreativity.model import read_manifest
from tempcreativity.peeperkorn import load_study_stories

manifests = {
    model_id: read_manifest(path) for model_id, path in zip(snakemake.params.model_ids, snakemake.input.manifests)
}
judging = snakemake.params.judge


def judge_while_up(model_id, stories, engine):
    """The judge's questions about the first model's stories, on its engine (None: all stories were cached)."""
    if judging is None or model_id != snakemake.params.model_ids[0]:
        return {}
    study = load_study_stories(judging["study_data"]) if judging["study_data"] else None
    stats = judge_on_engine(engine, stories, study, manifests[model_id], judging["judge"], judging["model"],
                            judging["cache_dir"])  # fmt: skip
    return {f"judge_{name}": value for name, value in stats.items()}


stories, stats = generate_stories(
    list(snakemake.params.plan.requests),
    snakemake.params.settings,
    manifests,
    snakemake.params.cache_dir,
    judge_while_up,
)
embedding = snakemake.params.embedding
primary_manifest = manifests[snakemake.params.model_ids[0]]  # the model embedder is the first generating model
stats |= fill_embedding_cache(stories["text"].to_list(), embedding["embedders"], primary_manifest, embedding["model"],
                              embedding["cache_dir"], embedding["model_embedder"])  # fmt: skip
write_parquet_atomic(stories, snakemake.output.stories)
write_json_atomic({"shard": int(snakemake.wildcards.shard), **stats}, snakemake.output.stats)
print(f"shard {snakemake.wildcards.shard}: {stats['cached']} stories from the cache, {stats['generated']} generated")
for prefix in ("judge", "judge_study"):
    if f"{prefix}_asked" in stats:
        print(f"{prefix} on the same engine: {stats[f'{prefix}_answers']} answers, {stats[f'{prefix}_asked']} asked")
for name in embedding["embedders"]:
    print(f"embedder {name}: {stats[f'embedded_{name}']} stories embedded into the cache")
