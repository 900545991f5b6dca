"""Snakemake adapter: plan a human evaluation of the run's stories (survey.enabled): the survey (key, assignments,
design summary, one form per participant) and the power of its design and of a grid of designs, per criterion."""

from pathlib import Path

from tempcreativity.logs import log_to

log_to(snakemake.log[0])

import polars as pl

from tempcreativity.figures import save
from tempcreativity.io import write_texts_atomic
from tempcreativity.power import design_temperatures, power_analysis, power_figure
from tempcreativity.ratings import load_ratings
from tempcreativity.survey import build_survey, rating_design

survey, grid = snakemake.params.survey, snakemake.params.survey["power"]
plan, lines, files = build_survey(
    pl.read_parquet(snakemake.input.stories),
    survey["participants"],
    survey["stories_per_participant"],
    survey["stories_per_temperature"],
    survey["seed"],
    survey["title"],
)
planned = rating_design(plan)
temperatures, per_temperature = design_temperatures(planned)
table, sentences = power_analysis(
    load_ratings(snakemake.input.ratings),
    temperatures,
    tuple(grid["participants"]),
    tuple(grid["stories_per_participant"]),
    (per_temperature,),
    grid["replicates"],
    survey["seed"],
    grid["alpha"],
    target=grid["target"],
    source=snakemake.params.source,
    planned=planned,
)
# (the forms go into the forms folder)
named = {
    "key.csv": snakemake.output.key,
    "assignments.csv": snakemake.output.assignments,
    "design.txt": snakemake.output.design,
}
write_texts_atomic(
    {Path(named.get(name) or Path(snakemake.output.forms) / Path(name).name): text for name, text in files.items()}
    | {
        Path(snakemake.output.power): table.write_csv(float_precision=6),
        Path(snakemake.output.sentences): "\n".join(sentences) + "\n",
    }
)
save(power_figure(table, grid["target"]), snakemake.output.png, snakemake.output.svg)
for line in [*lines, *sentences]:
    print(line)
