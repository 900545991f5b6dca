# Figures and the self-contained HTML report.


localrules:
    plot_figures,
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
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        code=script_digest("plot_figures.py"),
    script:
        "../../scripts/plot_figures.py"


rule build_report:
    input:
        unpack(judge_validation_files),
        manifest=rules.describe_model.output.manifest,
        stories=rules.collect_generations.output.stories,
        scores=rules.score_stories.output.scores,
        summary=rules.summarise_scores.output.summary,
        trends=rules.summarise_scores.output.trends,
        figures=rules.plot_figures.output.png,
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
        mem_mb=2000,
        runtime=30,
    params:
        config=config,
        files=report_files(),
        rating_sources=RATING_SOURCES,
        code=script_digest("build_report.py", "templates/report.html.j2"),
    script:
        "../../scripts/build_report.py"
