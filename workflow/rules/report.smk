# Figures and the self-contained HTML report.


localrules:
    plot_figures,
    frontier,
    build_report,


rule plot_figures:
    input:
        scores=rules.score_stories.output.scores,
        summary=rules.summarise_scores.output.summary,
        trends=rules.summarise_scores.output.trends,
        pca=rules.summarise_scores.output.pca,
    output:
        png=figure_report_outputs(),
        svg=figure_files("svg"),
    log:
        result("logs/plot_figures.log"),
    priority: 1  # on the longest chain to the report, with summarise_scores
    resources:
        mem_mb=analysis_mem_mb("plot_figures"),
        runtime=30,
    params:
        code=script_digest("plot_figures.py"),
    script:
        "../../scripts/plot_figures.py"


rule frontier:
    input:
        unpack(judge_files("judge_ratings")),
        scores=rules.score_stories.output.scores,
        embeddings=result(f"embeddings/{EMBEDDERS[0]}.parquet"),
    output:
        table=result("frontier.parquet"),
        png=report(
            result("figures/frontier.png"),
            caption=str(caption_file(FRONTIER)),
            category="Figures",
        ),
        svg=result("figures/frontier.svg"),
    log:
        result("logs/frontier.log"),
    resources:
        mem_mb=analysis_mem_mb("frontier"),
        runtime=30,
    params:
        resamples=config["scoring"]["bootstrap_resamples"],
        code=script_digest("frontier.py"),
    script:
        "../../scripts/frontier.py"


rule build_report:
    input:
        unpack(judge_files("judge_vs_people", "judge_vs_people_png")),
        unpack(
            survey_files(
                "survey_power", "survey_png", "survey_sentences", "survey_design"
            )
        ),
        manifest=PRIMARY_MANIFEST,
        manifests=model_manifests,
        stories=rules.collect_generations.output.stories,
        scores=rules.score_stories.output.scores,
        summary=rules.summarise_scores.output.summary,
        trends=rules.summarise_scores.output.trends,
        figures=rules.plot_figures.output.png,
        frontier=rules.frontier.output.table,
        frontier_png=rules.frontier.output.png,
        ratings_descriptives=ratings_tables("ratings_descriptives.csv"),
        ratings_lme=ratings_tables("ratings_lme.csv"),
        ratings_forest=ratings_tables("forest.png"),
        study_table1=rules.study_tables.output.table1,
        study_table2=rules.study_tables.output.table2,
        study_scores=rules.study_tables.output.story_scores,
    output:
        report=REPORT,
    log:
        result("logs/build_report.log"),
    resources:
        mem_mb=analysis_mem_mb("build_report"),
        runtime=30,
    params:
        config=config,
        files=report_files(),
        rating_sources=RATING_SOURCES,
        survey=survey_report_params(),
        code=script_digest(
            "build_report.py", "templates/report.html.j2", *CAPTION_FILES.values()
        ),
    script:
        "../../scripts/build_report.py"
