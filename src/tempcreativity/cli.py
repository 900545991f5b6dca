"""Command-line tools:
- ``tempcreativity ratings RATINGS.csv --out DIR [--scores scores.parquet]`` writes the study's two
  human-evaluation tables for any ratings file in the study's format;
- ``tempcreativity check-config CONFIG.yaml [OVERRIDE.yaml ...]`` checks a config (files laid over each other as
  Snakemake's --configfile does) and says what is wrong, with the line of a YAML syntax error; `make run` runs it
  before Snakemake, whose own message for bad YAML names no line."""

from __future__ import annotations

import argparse
import sys

import polars as pl

from tempcreativity.config import load_config
from tempcreativity.errors import ConfigError
from tempcreativity.ratings import RatingsError, load_ratings, write_tables

DEFAULT_SCHEMA = "workflow/schemas/config.schema.yaml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tempcreativity", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    ratings = commands.add_parser("ratings", help="Table 1 (descriptives, Cronbach's alpha) and Table 2 (mixed models)")
    ratings.add_argument("ratings_csv", help="ratings in the study's format, one row per rating")
    ratings.add_argument("--out", required=True, help="folder for ratings_descriptives.csv and ratings_lme.csv")
    ratings.add_argument("--scores", help="the pipeline's scores.parquet: adds perplexity, cosine similarity and "
                         "edit distance as predictors (joined on story_id)")  # fmt: skip
    check = commands.add_parser("check-config", help="validate a config before a run, naming what is wrong")
    check.add_argument("configs", nargs="+", help="config files; later ones are laid over earlier ones")
    check.add_argument("--schema", default=DEFAULT_SCHEMA, help=f"the config schema (default {DEFAULT_SCHEMA})")
    arguments = parser.parse_args(argv)
    if arguments.command == "check-config":
        try:
            config = load_config(arguments.configs[0], arguments.schema, *arguments.configs[1:])
        except (ConfigError, FileNotFoundError) as error:
            print(f"tempcreativity check-config: {error}", file=sys.stderr)
            return 2
        print(f"config ok: experiment {config['experiment']}")
        return 0
    try:
        table = load_ratings(arguments.ratings_csv)
        scores = pl.read_parquet(arguments.scores) if arguments.scores else None
        paths = write_tables(table, arguments.out, scores)
    except (RatingsError, FileNotFoundError) as error:
        print(f"tempcreativity ratings: {error}", file=sys.stderr)
        return 2
    for path in paths.values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
