"""Cost of the power simulation: seconds per crossed fit (crossed.py's REML against ratings.py's statsmodels fit),
on the study's design (180 ratings) and on the default grid's largest design, with how often the two fits agree
on the test's decision; then the wall time of the default grid as `tempcreativity power` runs it.

    .venv/bin/python benchmarks/bench_power.py [--fits 30] [--no-grid]

Prints Markdown tables."""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from tempcreativity.power import (
    DEFAULT_PARTICIPANTS,
    DEFAULT_REPLICATES,
    DEFAULT_STORIES_PER_PARTICIPANT,
    DEFAULT_STORIES_PER_TEMPERATURE,
    _fast_fitter,
    _statsmodels_fitter,
    design_from_ratings,
    estimate_components,
    grid_design,
    power_grid,
    simulate_ratings,
)
from tempcreativity.ratings import load_ratings

RATINGS = Path(__file__).resolve().parents[1] / "resources" / "peeperkorn2024" / "survey_ratings.csv"


def time_fits(design, components, fits: int, seed: int = 0) -> dict[str, float]:
    """Seconds per fit of both fitters on the same simulated data sets, and their decisions' agreement."""
    rng = np.random.default_rng(seed)
    data = [simulate_ratings(design, components, rng) for _ in range(fits)]
    results = {}
    for name, fitter in (("fast", _fast_fitter(design)), ("statsmodels", _statsmodels_fitter(design))):
        start = time.perf_counter()
        results[name] = [fitter(y)["p"] for y in data]
        results[f"{name}_s"] = (time.perf_counter() - start) / fits
    agree = np.mean([(a < 0.05) == (b < 0.05) for a, b in zip(results["fast"], results["statsmodels"])])
    return {"fast_s": results["fast_s"], "statsmodels_s": results["statsmodels_s"], "agree": float(agree)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=30, help="simulated data sets timed per design")
    parser.add_argument("--no-grid", action="store_true", help="skip timing the default grid")
    arguments = parser.parse_args()
    warnings.filterwarnings("ignore", category=RuntimeWarning)  # statsmodels' optimizer chatter
    ratings = load_ratings(RATINGS)
    components = {found.criterion: found for found in estimate_components(ratings)}
    temperatures = sorted(set(ratings["temperature"].to_list()))
    largest, _ = grid_design(
        temperatures,
        max(DEFAULT_PARTICIPANTS),
        max(DEFAULT_STORIES_PER_PARTICIPANT),
        max(DEFAULT_STORIES_PER_TEMPERATURE),
        seed=0,
    )
    print("| design | ratings | criterion | fast fit (s) | statsmodels fit (s) | speed-up | same decision |")
    print("|---|---|---|---|---|---|---|")
    for label, design in (("the study's own", design_from_ratings(ratings)), ("largest default", largest)):
        for criterion in ("novelty", "coherence"):
            found = time_fits(design, components[criterion], arguments.fits)
            print(
                f"| {label} | {design.story.size} | {criterion} | {found['fast_s']:.4f} | "
                f"{found['statsmodels_s']:.3f} | {found['statsmodels_s'] / found['fast_s']:.0f}x | "
                f"{found['agree']:.0%} |"
            )
    if arguments.no_grid:
        return
    start = time.perf_counter()
    table = power_grid(list(components.values()), temperatures, observed=design_from_ratings(ratings))
    seconds = time.perf_counter() - start
    fits = table["replicates"].sum()
    print()
    print("| grid | designs | fits | seconds | seconds per fit |")
    print("|---|---|---|---|---|")
    print(
        f"| default ({len(DEFAULT_PARTICIPANTS)} x {len(DEFAULT_STORIES_PER_PARTICIPANT)} designs + the study's, "
        f"{DEFAULT_REPLICATES} replicates, 4 criteria) | {table.height // 4} | {fits} | {seconds:.0f} | "
        f"{seconds / fits:.4f} |"
    )


if __name__ == "__main__":
    main()
