"""Snakemake adapter: generate one shard's stories (the log is also shown live, with vLLM's progress bar); when the
judge is the first generating model, ask its questions on the same engine too (params.judge); then embed the
stories with every embedder while vLLM is loaded (params.embedding). Each product is a declared output: the stories,
the embeddings per embedder, and the judge's ratings of the shard's stories and (shard 0) of the study's stories
(tables without rows where the judge did not rate them here: the judge's job rates those).

The work runs under the ``__main__`` guard: on GPUs each engine's core runs in a child process (one engine per
process, see tempcreativity.engine), which vLLM may start by spawning, and a spawned child imports this file."""

from tempcreativity.logs import log_to

judge_tables = {}  # the judge's ratings by story set, from judge_while_up


def judge_while_up(model_id, stories, engine):
    """The judge's questions about the first model's stories, on its engine (None: all stories were cached)."""
    from tempcreativity.judge import judge_on_engine
    from tempcreativity.model import read_manifest
    from tempcreativity.peeperkorn import load_study_stories

    judging = snakemake.params.judge
    if judging is None or model_id != snakemake.params.model_ids[0]:
        return {}
    study = load_study_stories(judging["study_data"]) if judging["study_data"] else None
    manifest = read_manifest(snakemake.input.manifests[0])
    tables, stats = judge_on_engine(
        engine, stories, study, manifest, judging["judge"], judging["model"], judging["cache_dir"]
    )
    judge_tables.update(tables)
    return {f"judge_{name}": value for name, value in stats.items()}


def main():
    log_to(snakemake.log[0], keep_console=True)

    from tempcreativity.embedding import embed_with_each, embedding_table
    from tempcreativity.generation import generate_stories
    from tempcreativity.io import write_json_atomic, write_parquet_atomic
    from tempcreativity.judge import empty_ratings
    from tempcreativity.model import read_manifest

    model_ids = snakemake.params.model_ids
    manifests = {model_id: read_manifest(path) for model_id, path in zip(model_ids, snakemake.input.manifests)}
    stories, stats = generate_stories(
        list(snakemake.params.plan.requests),
        snakemake.params.settings,
        manifests,
        snakemake.params.cache_dir,
        judge_while_up if snakemake.params.judge else None,  # (an engine that stays up keeps a 4 GiB KV cache)
    )
    embedding = snakemake.params.embedding
    vectors, embed_stats = embed_with_each(
        stories["text"].to_list(),
        embedding["embedders"],
        manifests[model_ids[0]],  # the model embedder is the first generating model
        embedding["model"],
        embedding["cache_dir"],
        embedding["model_embedder"],
    )
    stats |= embed_stats
    for name, path in zip(embedding["embedders"], snakemake.output.embeddings):
        write_parquet_atomic(embedding_table(stories["story_id"], vectors[name]), path)
    write_parquet_atomic(judge_tables.get("experiment", empty_ratings()), snakemake.output.judge)
    write_parquet_atomic(judge_tables.get("study", empty_ratings()), snakemake.output.judge_study)
    write_parquet_atomic(stories, snakemake.output.stories)
    write_json_atomic({"shard": int(snakemake.wildcards.shard), **stats}, snakemake.output.stats)
    print(
        f"shard {snakemake.wildcards.shard}: {stats['cached']} stories from the cache, {stats['generated']} generated"
    )
    for prefix in ("judge", "judge_study"):
        if f"{prefix}_asked" in stats:
            print(
                f"{prefix} on the same engine: {stats[f'{prefix}_answers']} answers, {stats[f'{prefix}_asked']} asked"
            )
    for name in embedding["embedders"]:
        print(f"embedder {name}: {stats[f'embedded_{name}']} stories embedded (the rest from the cache)")


if __name__ == "__main__":
    main()
