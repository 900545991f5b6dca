"""Command-line tools:
- ``tempcreativity ratings RATINGS.csv --out DIR [--scores scores.parquet] [--random-effects participant|crossed|both]``
  writes the study's two human-evaluation tables for any ratings file in the study's format;
- ``tempcreativity study --out DIR [--model-dir FOLDER]`` writes the study's Tables 1 and 2 from its released
  ratings beside the paper's printed values, and its 31 released stories scored against its exemplar;
- ``tempcreativity check-config CONFIG.yaml [OVERRIDE.yaml ...]`` checks a config (files laid over each other as
  Snakemake's --configfile does) and says what is wrong, with the line of a YAML syntax error; `make run` runs it
  before Snakemake, whose own message for bad YAML names no line;
- ``tempcreativity power``, ``survey`` and ``survey-import`` plan a human evaluation and bring its answers back
  (planning_cli.py)."""

from __future__ import annotations

import argparse
import sys

from tempcreativity import planning_cli
from tempcreativity.config import load_config
from tempcreativity.errors import ConfigError
from tempcreativity.io import OutputPathError, check_output_folder
from tempcreativity.ratings import RatingsError, load_ratings, load_scores, write_tables

DEFAULT_SCHEMA = "workflow/schemas/config.schema.yaml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tempcreativity", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    ratings = commands.add_parser("ratings", help="Table 1 (descriptives, Cronbach's alpha) and Table 2 (mixed models)")
    ratings.add_argument("ratings_csv", help="ratings in the study's format, one row per rating")
    ratings.add_argument("--out", required=True, help="folder for ratings_descriptives.csv and ratings_lme.csv")
    ratings.add_argument(
        "--scores",
        help="the pipeline's scores.parquet: adds perplexity, cosine similarity and "
        "edit distance as predictors (joined on story_id)",
    )
    ratings.add_argument(
        "--random-effects",
        choices=["participant", "crossed", "both"],
        help="Table 2's models: participant (the study's), crossed (participant and story) or both; "
        "default both where stories were rated more than once, else participant",
    )
    check = commands.add_parser("check-config", help="validate a config before a run, naming what is wrong")
    check.add_argument("configs", nargs="+", help="config files; later ones are laid over earlier ones")
    check.add_argument("--schema", default=DEFAULT_SCHEMA, help=f"the config schema (default {DEFAULT_SCHEMA})")
    study = commands.add_parser("study", help="the study's own data: Tables 1 and 2 and its stories' scores")
    study.add_argument("--data", default="resources/peeperkorn2024", help="the study's released data folder")
    study.add_argument("--out", required=True, help="folder for table1.csv, table2.csv and story_scores.csv")
    study.add_argument(
        "--model-dir",
        help="a model folder: adds teacher-forced perplexity and the model's "
        "embedding (last-token pooling, not normalised, as the study's llama.cpp embedding)",
    )
    study.add_argument("--cache", default="results/cache/embeddings", help="the embedding cache")
    planning_cli.add_parsers(commands)
    arguments = parser.parse_args(argv)
    if arguments.command in planning_cli.COMMANDS:
        return planning_cli.run(arguments)
    if arguments.command == "study":
        return _study(arguments)
    if arguments.command == "check-config":
        try:
            config = load_config(arguments.configs[0], arguments.schema, *arguments.configs[1:])
        except (ConfigError, FileNotFoundError) as error:
            print(f"tempcreativity check-config: {error}", file=sys.stderr)
            return 2
        print(f"config ok: experiment {config['experiment']}")
        return 0
    try:
        check_output_folder(arguments.out, "--out", "ratings_descriptives.csv and ratings_lme.csv")
        table = load_ratings(arguments.ratings_csv)
        scores = load_scores(arguments.scores) if arguments.scores else None
        paths = write_tables(table, arguments.out, scores, arguments.random_effects)
    except (RatingsError, FileNotFoundError, OutputPathError) as error:
        print(f"tempcreativity ratings: {error}", file=sys.stderr)
        return 2
    for path in paths.values():
        print(path)
    return 0


def _study(arguments) -> int:
    from pathlib import Path

    from tempcreativity.io import write_texts_atomic
    from tempcreativity.model import check_model_folder
    from tempcreativity.study import study_csvs

    try:
        check_output_folder(arguments.out, "--out", "table1.csv, table2.csv and story_scores.csv")
        if arguments.model_dir is not None:
            check_model_folder(arguments.model_dir, "--model-dir", trust_field="")
        csvs = study_csvs(arguments.data, arguments.cache, arguments.model_dir)
    except (RatingsError, FileNotFoundError, OutputPathError, ConfigError) as error:
        print(f"tempcreativity study: {str(error).removeprefix('invalid config: ')}", file=sys.stderr)
        return 2
    files = {Path(arguments.out) / f"{name}.csv": text for name, text in csvs.items()}
    write_texts_atomic(files)
    for path in files:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
