"""Snakemake adapter: write the self-contained HTML report."""

from pathlib import Path

from tempcreativity.logs import log_to

log_to(snakemake.log[0])

import polars as pl

from tempcreativity.io import write_text_atomic
from tempcreativity.model import judge_is_first_model, judge_is_generator, judge_model_path, read_manifest
from tempcreativity.provenance import git_state, package_versions
from tempcreativity.report import (
    frontier_section,
    human_study_section,
    judge_validation_section,
    ratings_section,
    render_report,
    study_section,
)

config = snakemake.params.config
generations = pl.read_parquet(snakemake.input.stories)
survey = snakemake.params.survey  # (None without survey.enabled)
judge = dict(config["judge"], is_generator=judge_is_generator(config))
first_model = judge_is_first_model(config)
ratings = [
    ratings_section(source, pl.read_csv(descriptives), pl.read_csv(lme), Path(forest),
                    rater=read_manifest(snakemake.input.manifest)["model"] if first_model else judge_model_path(config),
                    judge=judge)
    for source, descriptives, lme, forest in zip(
        snakemake.params.rating_sources,
        snakemake.input.ratings_descriptives,
        snakemake.input.ratings_lme,
        snakemake.input.ratings_forest,
    )
]  # fmt: skip

html = render_report(
    config=config,
    manifest=read_manifest(snakemake.input.manifest),
    generations=generations,
    scores=pl.read_parquet(snakemake.input.scores),
    summary=pl.read_parquet(snakemake.input.summary),
    trend_table=pl.read_parquet(snakemake.input.trends),
    figures={Path(path).stem: Path(path) for path in snakemake.input.figures},
    files=snakemake.params.files,
    provenance={"git": git_state(Path(snakemake.scriptdir).parent), "packages": package_versions()},
    ratings=ratings,
    study=study_section(
        pl.read_csv(snakemake.input.study_table1),
        pl.read_csv(snakemake.input.study_table2),
        pl.read_csv(snakemake.input.study_scores),
    ),
    judge_validation=judge_validation_section(
        pl.read_csv(snakemake.input.judge_vs_people), Path(snakemake.input.judge_vs_people_png)
    )
    if "judge_vs_people" in snakemake.input.keys()
    else None,
    examples_per_temperature=config["scoring"]["examples_per_temperature"],
    models=[model | read_manifest(path) for model, path in zip(config["models"], snakemake.input.manifests)],
    frontier=frontier_section(pl.read_parquet(snakemake.input.frontier), Path(snakemake.input.frontier_png)),
    human_study=human_study_section(
        pl.read_csv(snakemake.input.survey_power),
        Path(snakemake.input.survey_sentences).read_text().splitlines(),
        Path(snakemake.input.survey_design).read_text().splitlines(),
        Path(snakemake.input.survey_png),
        survey["settings"],
        survey,
        generations.filter(~pl.col("is_exemplar"))["temperature"].unique().to_list(),
    )
    if survey
    else None,
)
write_text_atomic(html, snakemake.output.report)
