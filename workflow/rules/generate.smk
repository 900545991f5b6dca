# Generation: one vLLM engine per shard job; stories already in the content-addressed cache are not generated again.
# The same job embeds its stories with every embedder and, when the judge is the generating model, rates them on its
# engine (vLLM is loaded there already): each is a declared output of the shard, which the embedding and judge rules
# gather.


localrules:
    collect_generations,


rule generate_shard:
    input:
        unpack(shard_judge_inputs),
        manifests=model_manifests,
    output:
        stories=result("shards/shard-{shard}.parquet"),
        stats=result("shards/shard-{shard}.stats.json"),
        embeddings=shard_embedding_outputs(),
        judge=result("shards/shard-{shard}.judge.parquet"),
        judge_study=result("shards/shard-{shard}.judge-study.parquet"),
    log:
        result("logs/generate_shard-{shard}.log"),
    benchmark:
        result("benchmarks/generate_shard-{shard}.tsv")
    threads: engine_threads
    resources:
        gpu=engine_gpus,
        tasks_per_gpu=0,  # SLURM: one vLLM process drives all GPUs of the job
        mem_mb=engine_mem_mb,
        runtime=engine_runtime,
    params:
        plan=shard_plan,
        plan_digest=shard_plan_digest,
        settings=generation_settings,
        model_ids=MODEL_IDS,
        cache_dir=GENERATION_CACHE,
        judge=shard_judge,
        embedding={
            "embedders": EMBEDDERS,
            "model": PRIMARY_MODEL,
            "cache_dir": EMBEDDING_CACHE,
            "model_embedder": config["scoring"]["model_embedder"],
        },
        code=script_digest("generate.py"),
    script:
        "../../scripts/generate.py"


rule collect_generations:
    input:
        shards=all_shards,
    output:
        stories=result("generations.parquet"),
    log:
        result("logs/collect_generations.log"),
    resources:
        mem_mb=analysis_mem_mb("collect_generations"),
        runtime=30,
    params:
        story_ids=story_order,
        code=script_digest("collect_generations.py"),
    script:
        "../../scripts/collect_generations.py"
