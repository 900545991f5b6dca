# MLflow: one tracking step at the end of the DAG, so that a tracking failure never discards other work.


localrules:
    track_mlflow,


rule track_mlflow:
    input:
        unpack(judge_files("judge_ratings", "judge_vs_people")),
        report=REPORT,
        manifests=model_manifests,
        stories=rules.collect_generations.output.stories,
        scores=rules.score_stories.output.scores,
        summary=rules.summarise_scores.output.summary,
        trends=rules.summarise_scores.output.trends,
        figures=rules.plot_figures.output.png,
        frontier=rules.frontier.output.table,
        frontier_png=rules.frontier.output.png,
        shard_stats=shard_stats_files,
        ratings_descriptives=ratings_tables("ratings_descriptives.csv"),
        ratings_lme=ratings_tables("ratings_lme.csv"),
    output:
        # update(): Snakemake keeps the earlier run's files while the step runs, and puts them back if it fails
        # (a server that is down, say), instead of deleting them; `logged` is written last, so a failed step has
        # none and the next run tries again
        runs=update(result("mlflow.json")),
        config=update(result("config.yaml")),
        logged=result("logs/track_mlflow.done"),
    log:
        result("logs/track_mlflow.log"),
    resources:
        mem_mb=analysis_mem_mb("track_mlflow"),
        runtime=30,
    params:
        config=config,
        rating_sources=RATING_SOURCES,
        code=script_digest("track_mlflow.py"),
    script:
        "../../scripts/track_mlflow.py"
