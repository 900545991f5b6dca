"""Command-line tools: ``tempcreativity ratings RATINGS.csv --out DIR [--scores scores.parquet]`` writes the
study's two human-evaluation tables for any ratings file in the study's format."""

from __future__ import annotations

import argparse
import sys

import polars as pl

from tempcreativity.ratings import RatingsError, load_ratings, write_tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tempcreativity", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    ratings = commands.add_parser("ratings", help="Table 1 (descriptives, Cronbach's alpha) and Table 2 (mixed models)")
    ratings.add_argument("ratings_csv", help="ratings in the study's format, one row per rating")
    ratings.add_argument("--out", required=True, help="folder for ratings_descriptives.csv and ratings_lme.csv")
    ratings.add_argument("--scores", help="the pipeline's scores.parquet: adds perplexity, cosine similarity and "
                         "edit distance as predictors (joined on story_id)")  # fmt: skip
    arguments = parser.parse_args(argv)
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
