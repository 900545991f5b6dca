"""Is the LLM judge informative? Its ratings of the study's 31 rated stories against the study's 36 people.

Per criterion, over the stories: Spearman's rho between the judge's rating and the people's mean rating of each
story, with a percentile bootstrap CI (stories resampled) and scipy's p-value; Krippendorff's alpha (interval)
between the two, read as two raters of the same stories (it asks for agreement in level, not only in order); and
both means. The people's mean per story averages 5 to 7 ratings (coherence: higher = harder to follow, as the
judge is asked)."""

from __future__ import annotations

import numpy as np
import polars as pl

from tempcreativity.ratings import RATING_ITEMS, interval_alpha
from tempcreativity.statistics import spearman_with_ci


def people_means(ratings: pl.DataFrame) -> pl.DataFrame:
    """The people's mean rating of each story and criterion, and how many people rated it."""
    return ratings.group_by("story_id").agg(pl.col(*RATING_ITEMS).mean(), pl.len().alias("raters")).sort("story_id")


def judge_vs_people(judge: pl.DataFrame, people: pl.DataFrame, resamples: int) -> pl.DataFrame:
    """One row per criterion: n stories, rho with CI and p, Krippendorff's alpha, the judge's and the people's
    mean. ``judge`` holds one rating per story (the judge's table), ``people`` every rating (the study's file)."""
    joined = judge.select("story_id", *RATING_ITEMS).join(people_means(people), on="story_id", suffix="_people")
    rows = []
    for criterion in RATING_ITEMS:
        judged = joined[criterion].to_numpy().astype(float)
        rated = joined[f"{criterion}_people"].to_numpy().astype(float)
        correlation = spearman_with_ci(rated, judged, resamples)
        alpha = interval_alpha(np.vstack([judged, rated]))
        rows.append(
            {
                "criterion": criterion,
                "n": joined.height,
                "rho": correlation["rho"],
                "rho_ci_low": correlation["rho_ci_low"],
                "rho_ci_high": correlation["rho_ci_high"],
                "p_value": correlation["p_value"],
                "krippendorff_alpha": float(alpha),
                "judge_mean": float(judged.mean()),
                "people_mean": float(rated.mean()),
            }
        )
    return pl.DataFrame(rows)


def pairs(judge: pl.DataFrame, people: pl.DataFrame) -> pl.DataFrame:
    """Long table for the figure: story, temperature, criterion, judge's rating, people's mean."""
    joined = judge.select("story_id", "temperature", *RATING_ITEMS).join(
        people_means(people), on="story_id", suffix="_people"
    )
    return pl.concat(
        joined.select(
            "story_id",
            "temperature",
            pl.lit(criterion).alias("criterion"),
            pl.col(criterion).alias("judge"),
            pl.col(f"{criterion}_people").alias("people"),
        )
        for criterion in RATING_ITEMS
    )


def verdict(table: pl.DataFrame) -> str:
    """One sentence from the numbers: on which criteria the judge's ranking of the stories agrees with people's
    (a 95% CI of rho above 0), goes against it (below 0), or is indistinguishable from none."""
    groups: dict[str, list[str]] = {"agrees": [], "against": [], "none": []}
    for row in table.iter_rows(named=True):
        key = "agrees" if row["rho_ci_low"] > 0 else "against" if row["rho_ci_high"] < 0 else "none"
        groups[key].append(f"{row['criterion']} (ρ = {row['rho']:.2f})")
    parts = []
    if groups["agrees"]:
        parts.append("ranks the stories as people do on " + ", ".join(groups["agrees"]))
    if groups["against"]:
        parts.append("ranks them against people on " + ", ".join(groups["against"]))
    if groups["none"]:
        parts.append("shows no agreement distinguishable from none on " + ", ".join(groups["none"]))
    return "On the study's stories the judge " + "; ".join(parts) + "."
