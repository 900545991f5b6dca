"""Time and peak memory of the ratings analysis (Table 1 and Table 2, as `tempcreativity ratings` computes them) on
seeded synthetic ratings of 10^4, 10^5 and 10^6 rows:

    .venv/bin/python benchmarks/bench_ratings.py [--rows 10000 100000 1000000] [--stories 1000] [--per-participant 5]
                                                 [--threads N]

Each size runs in a fresh child process (so its peak resident memory, getrusage's ru_maxrss, is its own): rows / 5
participants each rate 5 distinct stories of --stories, on 1-5, with participant and story effects and a slope on
temperature; the file's checks (validate_ratings), then Table 1 (mean, SD, Cronbach's alpha, Krippendorff's alpha,
ICC) and Table 2 (temperature, both models: participant-only and crossed participant + story), as ratings_tables
computes them. Prints a Markdown table. (statsmodels' dense variance components, used before, asked for 298 GiB at
10^6 rows and 200,000 participants.) --threads sets the BLAS threads of the children (OPENBLAS_NUM_THREADS and
OMP_NUM_THREADS): on a machine whose cores are busy with other work, one thread is much faster than contending ones."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import polars as pl


def synthetic_ratings(rows: int, stories: int, per_participant: int, seed: int = 0) -> pl.DataFrame:
    """``rows`` seeded ratings in the study's format: rows / per_participant participants, each rating
    per_participant distinct stories out of ``stories``."""
    from tempcreativity.ratings import RATING_ITEMS

    rng = np.random.default_rng(seed)
    participants = rows // per_participant
    base = rng.integers(0, stories, participants)
    step = rng.integers(1, max(2, stories // per_participant), participants)  # j * step < stories: distinct stories
    story = ((base[:, None] + np.arange(per_participant)[None, :] * step[:, None]) % stories).ravel()
    person = np.repeat(np.arange(participants), per_participant)
    temperature = rng.choice([0.01, 0.334, 0.667, 1.0, 1.334, 1.667, 2.0], stories)
    story_effect, person_effect = rng.normal(0, 0.4, stories), rng.normal(0, 0.6, participants)
    columns = {}
    for item in RATING_ITEMS:
        value = (
            3 + 0.3 * temperature[story] + story_effect[story] + person_effect[person] + rng.normal(0, 0.9, story.size)
        )
        columns[item] = np.clip(np.round(value), 1, 5)
    return pl.DataFrame(
        {
            "story_id": pl.Series(story).cast(pl.String),
            "temperature": temperature[story],
            "participant_id": pl.Series(person).cast(pl.String),
            **columns,
        }
    )


def measure(rows: int, stories: int, per_participant: int) -> dict:
    """One size, in this process: seconds to check the table, seconds for both tables, peak resident memory."""
    from tempcreativity.ratings import ratings_tables, validate_ratings

    frame = synthetic_ratings(rows, stories, per_participant)
    started = time.perf_counter()
    ratings = validate_ratings(frame)
    checked = time.perf_counter() - started
    started = time.perf_counter()
    tables = ratings_tables(ratings)
    computed = time.perf_counter() - started
    lme = pl.read_csv(tables["lme"].encode())
    return {
        "rows": ratings.height,
        "participants": ratings["participant_id"].n_unique(),
        "stories": ratings["story_id"].n_unique(),
        "check_s": round(checked, 2),
        "tables_s": round(computed, 2),
        "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "models": ", ".join(lme["random_effects"].unique(maintain_order=True).to_list()),
        "novelty_beta": float(lme.filter(pl.col("rating") == "novelty")["beta"][0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--stories", type=int, default=1000)
    parser.add_argument("--per-participant", type=int, default=5)
    parser.add_argument("--threads", type=int, help="BLAS threads per child (default: the libraries' own choice)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # (a child process: one size, as JSON)
    arguments = parser.parse_args()
    if arguments.one:
        print(json.dumps(measure(arguments.one, arguments.stories, arguments.per_participant)))
        return
    environment = dict(os.environ)
    if arguments.threads:
        environment |= {"OPENBLAS_NUM_THREADS": str(arguments.threads), "OMP_NUM_THREADS": str(arguments.threads)}
    print("| rows | participants | stories | check (s) | Tables 1 and 2 (s) | peak memory (MiB) | models |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | --- |", flush=True)
    for rows in arguments.rows:
        completed = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                str(rows),
                "--stories",
                str(arguments.stories),
                "--per-participant",
                str(arguments.per_participant),
            ],
            capture_output=True,
            text=True,
            check=True,
            env=environment,
        )
        result = json.loads(completed.stdout.strip().splitlines()[-1])
        print(
            f"| {result['rows']:,} | {result['participants']:,} | {result['stories']:,} | {result['check_s']} | "
            f"{result['tables_s']} | {result['peak_mib']:,} | {result['models']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
