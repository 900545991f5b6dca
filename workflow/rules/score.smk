# Scoring: embeddings (cached per story), scores per story, summaries, trends and PCA.


rule embed_stories:
    input:
        stories=rules.collect_generations.output.stories,
        manifest=PRIMARY_MANIFEST,
    output:
        embeddings=result("embeddings/{embedder}.parquet"),
    log:
        result("logs/embed_stories-{embedder}.log"),
    benchmark:
        result("benchmarks/embed_stories-{embedder}.tsv")
    threads: engine_threads
    resources:
        gpu=engine_gpus,
        tasks_per_gpu=0,  # SLURM: one vLLM process drives all GPUs of the job
        mem_mb=engine_mem_mb,
        runtime=engine_runtime,
    params:
        model=PRIMARY_MODEL,
        model_embedder=config["scoring"]["model_embedder"],
        cache_dir=EMBEDDING_CACHE,
        code=script_digest("embed_stories.py"),
    script:
        "../../scripts/embed_stories.py"


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
        mem_mb=4000,
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
        mem_mb=4000,
        runtime=60,
    params:
        resamples=config["scoring"]["bootstrap_resamples"],
        seeding=config["seeding"],
        code=script_digest("summarise_scores.py"),
    script:
        "../../scripts/summarise_scores.py"
