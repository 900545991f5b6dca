# Scoring: the generation jobs' embeddings gathered per embedder, scores per story, summaries, trends and PCA.


localrules:
    collect_embeddings,


rule collect_embeddings:
    input:
        stories=rules.collect_generations.output.stories,
        shards=shard_embedding_files,
    output:
        embeddings=result("embeddings/{embedder}.parquet"),
    log:
        result("logs/collect_embeddings-{embedder}.log"),
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        code=script_digest("collect_embeddings.py"),
    script:
        "../../scripts/collect_embeddings.py"


rule score_stories:
    input:
        stories=rules.collect_generations.output.stories,
        embeddings=embedding_files,
    output:
        scores=result("scores.parquet"),
    log:
        result("logs/score_stories.log"),
    benchmark:
        result("benchmarks/score_stories.tsv")
    resources:
        mem_mb=analysis_mem_mb("score_stories"),
        runtime=60,
    params:
        embedders=EMBEDDERS,
        code=script_digest("score_stories.py"),
    script:
        "../../scripts/score_stories.py"


rule summarise_scores:
    input:
        stories=rules.collect_generations.output.stories,
        scores=rules.score_stories.output.scores,
        embeddings=result(f"embeddings/{EMBEDDERS[0]}.parquet"),
    output:
        summary=result("summary.parquet"),
        trends=result("trends.parquet"),
        pca=result("pca.parquet"),
    log:
        result("logs/summarise_scores.log"),
    benchmark:
        result("benchmarks/summarise_scores.tsv")
    priority: 1  # the longest chain to the report (summary, figures): started first, the ratings' jobs beside it
    resources:
        mem_mb=analysis_mem_mb("summarise_scores"),
        runtime=60,
    params:
        resamples=config["scoring"]["bootstrap_resamples"],
        seeding=config["seeding"],
        code=script_digest("summarise_scores.py"),
    script:
        "../../scripts/summarise_scores.py"
