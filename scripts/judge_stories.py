"""Snakemake adapter: the LLM judge's ratings of every story, and of the study's 31 rated stories (one rating per
story and criterion, in the study's format): the generation jobs' ratings where they rated a story on their engine,
the rest asked here. The work runs under the ``__main__`` guard: on GPUs the judge's engine core runs in a child
process, which vLLM may start by spawning."""

from tempcreativity.logs import log_to


def main():
    log_to(snakemake.log[0], keep_console=True)

    from pathlib import Path

    import polars as pl

    from tempcreativity.io import write_texts_atomic
    from tempcreativity.judge import complete_judge_tables
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
    rated = {
        "experiment": [pl.read_parquet(path) for path in snakemake.input.shard_judge],
        "study": [pl.read_parquet(path) for path in snakemake.input.shard_judge_study],
    }
    tables, stats = complete_judge_tables(
        story_sets, rated, folder, judge, snakemake.params.model, identity, snakemake.params.cache_dir
    )
    write_texts_atomic(
        {
            Path(snakemake.output.ratings): tables["experiment"].write_csv(),
            Path(snakemake.output.study_ratings): tables["study"].write_csv(),
        }
    )
    print(
        f"judge: {stats['from_generation_jobs']} stories rated by the generation jobs; the rest: "
        f"{stats['answers']} answers, {stats['asked']} asked of the engine, the rest from the cache"
    )


if __name__ == "__main__":
    main()
