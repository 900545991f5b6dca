# Ratings: the LLM judge, people's ratings when given, and the study's two tables for each source.


localrules:
    plot_ratings,
    study_tables,
    judge_vs_people,


rule judge_stories:
    input:
        unpack(judge_model_input),
        unpack(study_data_files),
        stories=rules.collect_generations.output.stories,
        manifest=PRIMARY_MANIFEST,
        shard_judge=shard_files("judge.parquet"),
        shard_judge_study=shard_files("judge-study.parquet"),
    output:
        ratings=result("ratings/judge_ratings.csv"),
        study_ratings=result("ratings/judge_study_ratings.csv"),
    log:
        result("logs/judge_stories.log"),
    benchmark:
        result("benchmarks/judge_stories.tsv")
    threads: judge_threads
    resources:
        gpu=engine_gpus,
        tasks_per_gpu=0,  # SLURM: one vLLM process drives all GPUs of the job
        mem_mb=engine_mem_mb,
        runtime=engine_runtime,
    params:
        config={"judge": config["judge"], "models": MODELS},
        model=PRIMARY_MODEL,
        data_dir=STUDY_DATA,
        cache_dir=JUDGE_CACHE,
        code=script_digest("judge_stories.py"),
    script:
        "../../scripts/judge_stories.py"


rule analyse_ratings:
    input:
        ratings=ratings_file,
        scores=rules.score_stories.output.scores,
    output:
        descriptives=result("ratings/{source}/ratings_descriptives.csv"),
        lme=result("ratings/{source}/ratings_lme.csv"),
    log:
        result("logs/analyse_ratings-{source}.log"),
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        random_effects=config["ratings"]["random_effects"],
        code=script_digest("analyse_ratings.py"),
    script:
        "../../scripts/analyse_ratings.py"


rule plot_ratings:
    input:
        lme=rules.analyse_ratings.output.lme,
    output:
        png=result("ratings/{source}/forest.png"),
        svg=result("ratings/{source}/forest.svg"),
    log:
        result("logs/plot_ratings-{source}.log"),
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        code=script_digest("plot_ratings.py"),
    script:
        "../../scripts/plot_ratings.py"


rule judge_vs_people:
    input:
        judge=rules.judge_stories.output.study_ratings,
        people=f"{STUDY_DATA}/survey_ratings.csv",
    output:
        table=result("ratings/judge_vs_people.csv"),
        png=result("ratings/judge_vs_people.png"),
        svg=result("ratings/judge_vs_people.svg"),
    log:
        result("logs/judge_vs_people.log"),
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        resamples=config["scoring"]["bootstrap_resamples"],
        code=script_digest("judge_vs_people.py"),
    script:
        "../../scripts/judge_vs_people.py"


rule study_tables:
    input:
        unpack(study_data_files),
    output:
        table1=result("study/table1.csv"),
        table2=result("study/table2.csv"),
        story_scores=result("study/story_scores.csv"),
    log:
        result("logs/study_tables.log"),
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        data_dir=STUDY_DATA,
        cache_dir=EMBEDDING_CACHE,
        code=script_digest("study_tables.py"),
    script:
        "../../scripts/study_tables.py"
