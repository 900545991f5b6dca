"""Power of a human evaluation from the study's variance components, by simulation.

Ratings are simulated from the crossed model the analysis fits, ``rating = intercept + beta * temperature +
u_participant + v_story + e`` with normal u, v, e, by default with the fixed effects and the participant, story and
residual variances that ratings.py's crossed fit (statsmodels mixedlm, REML) estimates on the study's released
ratings, per criterion; or on any ratings file (a pilot). For each design in a grid (participants x stories per
participant x stories per temperature, at the ratings' temperatures; who rates which story from
design.balanced_design, fixed for all replicates as it would be in a study) the same crossed model is fitted to
every simulated data set and the temperature effect tested (Wald z, two-sided, at alpha). Power is the share of
replicates that reject, with a Wilson interval for its Monte-Carlo error. The study's own design (who rated which
story in the ratings file) is simulated the same way, as a check on the grid, and so is a planned survey's (the
pipeline's plan_human_study: the survey it builds for the run's stories).

The ratings are not clipped to the 1-5 scale: the model is the analysis's linear Gaussian one, and clipping would
shrink the effect the analysis estimates. Each fit is crossed.CrossedModel's (the same REML estimates as
statsmodels, in milliseconds); ``fit="statsmodels"`` refits with ratings.py's own statsmodels call instead."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import polars as pl

from tempcreativity.progress import bar
from tempcreativity.ratings import RATING_ITEMS

DEFAULT_PARTICIPANTS = (20, 40, 60, 80, 120, 160)
DEFAULT_STORIES_PER_PARTICIPANT = (5, 10)
DEFAULT_STORIES_PER_TEMPERATURE = (5,)  # the study's, at each temperature above 0.001 (near-greedy: one story)
DEFAULT_REPLICATES = 200
FITS = ("fast", "statsmodels")


@dataclass(frozen=True)
class Components:
    """The crossed model's parameters for one criterion: fixed effects and variances."""

    criterion: str
    intercept: float
    beta: float
    var_participant: float
    var_story: float
    var_residual: float


@dataclass(frozen=True)
class RatingDesign:
    """Who rated which story: one entry per rating (participant and story indices), and each story's temperature."""

    participant: np.ndarray
    story: np.ndarray
    story_temperature: np.ndarray

    @property
    def temperature(self) -> np.ndarray:
        return self.story_temperature[self.story]


def estimate_components(ratings: pl.DataFrame, criteria: tuple[str, ...] = RATING_ITEMS) -> list[Components]:
    """The crossed model ``criterion ~ temperature + (1 | participant) + (1 | story)`` fitted by ratings.py (REML),
    per criterion.

    Args:
        ratings: ratings in the study's format (validated).
        criteria: the rating columns.

    Returns:
        One Components per criterion.
    """
    from tempcreativity.ratings import _fit, _variance_components

    frame = ratings.to_pandas()
    found = []
    for criterion in criteria:
        fitted = _fit(frame, f"{criterion} ~ temperature", "crossed")
        variances = _variance_components(fitted)
        found.append(
            Components(
                criterion,
                float(fitted.fe_params["Intercept"]),
                float(fitted.fe_params["temperature"]),
                variances["participant"],
                variances["story"],
                float(fitted.scale),
            )
        )
    return found


def design_from_ratings(ratings: pl.DataFrame) -> RatingDesign:
    """The design of a ratings file: who rated which story.

    Args:
        ratings: ratings in the study's format.

    Returns:
        Its RatingDesign (indices in order of first appearance).
    """
    participants = {name: index for index, name in enumerate(dict.fromkeys(ratings["participant_id"].to_list()))}
    stories = {name: index for index, name in enumerate(dict.fromkeys(ratings["story_id"].to_list()))}
    temperature = np.zeros(len(stories))
    for story, value in zip(ratings["story_id"], ratings["temperature"]):
        temperature[stories[story]] = value
    return RatingDesign(
        np.array([participants[name] for name in ratings["participant_id"]]),
        np.array([stories[name] for name in ratings["story_id"]]),
        temperature,
    )


def design_from_assignment(assignment: np.ndarray, story_temperature: np.ndarray) -> RatingDesign:
    """A RatingDesign from design.balanced_design's participants x K matrix of story indices."""
    participants, width = assignment.shape
    return RatingDesign(
        np.repeat(np.arange(participants), width), assignment.ravel().copy(), np.asarray(story_temperature, dtype=float)
    )


def simulate_ratings(design: RatingDesign, components: Components, rng: np.random.Generator) -> np.ndarray:
    """One data set from the crossed model: intercept + beta * temperature + participant + story effect + noise.

    Args:
        design: who rated which story.
        components: the parameters.
        rng: the random generator.

    Returns:
        One simulated rating per row of the design.
    """
    n_participants = int(design.participant.max()) + 1
    n_stories = design.story_temperature.size
    participant = rng.normal(0.0, math.sqrt(components.var_participant), n_participants)
    story = rng.normal(0.0, math.sqrt(components.var_story), n_stories)
    noise = rng.normal(0.0, math.sqrt(components.var_residual), design.story.size)
    return (
        components.intercept
        + components.beta * design.temperature
        + participant[design.participant]
        + story[design.story]
        + noise
    )


def _statsmodels_fitter(design: RatingDesign) -> Callable[[np.ndarray], dict[str, float]]:
    import pandas as pd

    from tempcreativity.ratings import _fit, _variance_components

    frame = pd.DataFrame(
        {
            "participant_id": design.participant.astype(str),
            "story_id": design.story.astype(str),
            "temperature": design.temperature,
        }
    )

    def fit(y: np.ndarray) -> dict[str, float]:
        fitted = _fit(frame.assign(rating=y), "rating ~ temperature", "crossed")
        variances = _variance_components(fitted)
        return {
            "beta": float(fitted.fe_params["temperature"]),
            "p": float(fitted.pvalues["temperature"]),
            "var_participant": variances["participant"],
            "var_story": variances["story"],
            "var_residual": float(fitted.scale),
        }

    return fit


def _fast_fitter(design: RatingDesign) -> Callable[[np.ndarray], dict[str, float]]:
    from tempcreativity.crossed import CrossedModel

    model = CrossedModel(design.participant, design.story, design.temperature)

    def fit(y: np.ndarray) -> dict[str, float]:
        result = model.fit(y)
        return {
            "beta": result.beta,
            "p": result.p,
            "var_participant": result.var_participant,
            "var_story": result.var_story,
            "var_residual": result.var_residual,
        }

    return fit


def simulate_power(
    design: RatingDesign,
    components: Components,
    replicates: int,
    rng: np.random.Generator,
    alpha: float = 0.05,
    fit: str = "fast",
) -> dict[str, float]:
    """Simulate ``replicates`` data sets on one design, refit each and test the temperature effect.

    Args:
        design: who rated which story (fixed across replicates).
        components: the generating parameters.
        replicates: how many data sets.
        rng: the random generator.
        alpha: the test's level.
        fit: ``fast`` (crossed.CrossedModel) or ``statsmodels`` (ratings.py's fit).

    Returns:
        replicates, rejections, failed (fits that gave no p; counted as not rejecting), power with its 95% Wilson
        interval (power_low, power_high), and the mean estimates (mean_beta, mean_var_participant,
        mean_var_story, mean_var_residual).
    """
    from statsmodels.stats.proportion import proportion_confint

    fitter = _fast_fitter(design) if fit == "fast" else _statsmodels_fitter(design)
    rejections = failed = 0
    estimates = []
    for _ in range(replicates):
        y = simulate_ratings(design, components, rng)
        try:
            found = fitter(y)
        except (np.linalg.LinAlgError, ValueError):
            failed += 1
            continue
        if not math.isfinite(found["p"]):
            failed += 1
            continue
        rejections += found["p"] < alpha
        estimates.append(found)
    low, high = proportion_confint(rejections, replicates, alpha=0.05, method="wilson")
    means = {
        f"mean_{key}": float(np.mean([row[key] for row in estimates])) if estimates else math.nan
        for key in ("beta", "var_participant", "var_story", "var_residual")
    }
    return {
        "replicates": replicates,
        "rejections": int(rejections),
        "failed": failed,
        "power": rejections / replicates,
        "power_low": float(low),
        "power_high": float(high),
        **means,
    }


def _seed(*parts: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(part) for part in parts]))


def grid_design(
    temperatures: list[float], participants: int, per_participant: int, per_temperature: int, seed: int
) -> tuple[RatingDesign, np.ndarray]:
    """The balanced design of one grid cell (design.balanced_design), seeded by the seed and the cell alone.

    Args:
        temperatures: the study's temperatures.
        participants: raters.
        per_participant: stories each rates.
        per_temperature: stories per temperature.
        seed: the run's seed.

    Returns:
        The RatingDesign and its participants x K assignment.
    """
    from tempcreativity.design import balanced_design

    strata = np.tile(np.arange(len(temperatures)), per_temperature)
    design_seed = int(_seed(seed, participants, per_participant, per_temperature).integers(2**32))
    assignment = balanced_design(strata, participants, per_participant, seed=design_seed)
    story_temperature = np.asarray(temperatures, dtype=float)[strata]
    return design_from_assignment(assignment, story_temperature), assignment


def power_grid(
    components: list[Components],
    temperatures: list[float],
    participants: tuple[int, ...] = DEFAULT_PARTICIPANTS,
    stories_per_participant: tuple[int, ...] = DEFAULT_STORIES_PER_PARTICIPANT,
    stories_per_temperature: tuple[int, ...] = DEFAULT_STORIES_PER_TEMPERATURE,
    replicates: int = DEFAULT_REPLICATES,
    seed: int = 0,
    alpha: float = 0.05,
    fit: str = "fast",
    observed: RatingDesign | None = None,
    progress: Callable[[int], None] | None = None,
    planned: RatingDesign | None = None,
) -> pl.DataFrame:
    """Power per criterion and design over the grid (and on the ``observed`` and ``planned`` designs, when given).

    Each cell's design and each (cell, criterion)'s simulations are seeded from ``seed`` and the cell alone, so
    a cell's numbers do not depend on the rest of the grid: same arguments, same table.

    Args:
        components: the generating parameters, one per criterion.
        temperatures: the temperatures of the stories.
        participants: numbers of raters.
        stories_per_participant: stories each rater rates.
        stories_per_temperature: stories at each temperature.
        replicates: simulated data sets per design and criterion.
        seed: the random seed.
        alpha: the test's level.
        fit: ``fast`` or ``statsmodels``.
        observed: a ratings file's own design, simulated too (design ``observed``).
        progress: called with the number of fits done after each (design, criterion); None: a progress bar
            (tempcreativity.progress) counts them.
        planned: a survey's design (survey.rating_design of a planned survey), simulated too (design ``planned``).

    Returns:
        One row per design x criterion: the design (participants, stories_per_participant, stories_per_temperature,
        stories, ratings, ratings_per_story_min/max, unshared_pair_share), power with its interval, the mean
        estimates, the generating parameters, and a note where a design could not be built.
    """
    from tempcreativity.design import DesignError, ratings_per_story, unshared_pairs

    given = {"observed": observed, "planned": planned}
    cells = [(kind, None, None, None) for kind, design in given.items() if design is not None]
    cells += [
        ("balanced", n, k, p) for n in stories_per_temperature for k in stories_per_participant for p in participants
    ]
    fits = None
    if progress is None:  # (the power command passes its own bar's update)
        fits = bar(desc="Simulated fits", unit="fit", total=len(cells) * len(components) * replicates)
        progress = fits.update
    rows = []
    for kind, per_temperature, per_participant, n_participants in cells:
        note = ""
        if kind in given:
            design = given[kind]
            n_participants = int(design.participant.max()) + 1
            width = np.bincount(design.participant)
            assignment = np.full((n_participants, width.max()), -1)
            for participant in range(n_participants):
                stories = design.story[design.participant == participant]
                assignment[participant, : stories.size] = stories
            per_participant = int(width.max()) if width.min() == width.max() else None
            counts = np.unique(design.story_temperature, return_counts=True)[1]
            per_temperature = int(counts[0]) if counts.min() == counts.max() else None
        else:
            try:
                design, assignment = grid_design(temperatures, n_participants, per_participant, per_temperature, seed)
            except DesignError as error:
                design, note = None, str(error)
        base = {
            "design": kind,
            "participants": n_participants,
            "stories_per_participant": per_participant,
            "stories_per_temperature": per_temperature,
            "temperatures": len(temperatures),
        }
        if design is not None:
            n_stories = design.story_temperature.size
            per_story = ratings_per_story(assignment, n_stories)
            unshared, pairs = unshared_pairs(assignment, n_stories)
            base |= {
                "stories": n_stories,
                "ratings": int(design.story.size),
                "ratings_per_story_min": int(per_story.min()),
                "ratings_per_story_max": int(per_story.max()),
                "unshared_pair_share": unshared / pairs,
            }
        for index, parameters in enumerate(components):
            row = dict(base)
            if design is None:
                row |= {"replicates": replicates, "rejections": None, "power": math.nan}
            else:
                rng = _seed(
                    seed, n_participants, per_participant or 0, per_temperature or 0, index, DESIGN_KINDS.index(kind)
                )
                row |= simulate_power(design, parameters, replicates, rng, alpha, fit)
            generating = asdict(parameters)
            row = {
                "criterion": generating.pop("criterion"),
                **row,
                "alpha": alpha,
                "fit": fit,
                "seed": seed,
                **{f"true_{key}": value for key, value in generating.items()},
                "note": note,
            }
            rows.append(dict.fromkeys(TABLE_COLUMNS) | row)
            progress(replicates)
    if fits is not None:
        fits.close()
    return pl.DataFrame(rows, infer_schema_length=None).select(TABLE_COLUMNS)


DESIGN_KINDS = ("balanced", "observed", "planned")  # (the index seeds a design's simulations)
TABLE_COLUMNS = (
    "criterion",
    "design",
    "participants",
    "stories_per_participant",
    "stories_per_temperature",
    "temperatures",
    "stories",
    "ratings",
    "ratings_per_story_min",
    "ratings_per_story_max",
    "unshared_pair_share",
    "replicates",
    "rejections",
    "failed",
    "power",
    "power_low",
    "power_high",
    "alpha",
    "mean_beta",
    "mean_var_participant",
    "mean_var_story",
    "mean_var_residual",
    "true_intercept",
    "true_beta",
    "true_var_participant",
    "true_var_story",
    "true_var_residual",
    "fit",
    "seed",
    "note",
)


def smallest_design(table: pl.DataFrame, target: float, criterion: str | None = None) -> dict | None:
    """The balanced design with the fewest ratings (then the fewest participants) whose power reaches ``target``
    for ``criterion``, or for every criterion where it is None.

    Args:
        table: power_grid's table.
        target: the power wanted.
        criterion: one criterion, or None for all of them.

    Returns:
        The design's row (participants, stories_per_participant, stories_per_temperature, ratings, and for one
        criterion its power and interval), or None when no design in the grid reaches it.
    """
    balanced = table.filter((pl.col("design") == "balanced") & pl.col("power").is_not_nan())
    if criterion is not None:
        balanced = balanced.filter(pl.col("criterion") == criterion)
    keys = ["participants", "stories_per_participant", "stories_per_temperature", "ratings"]
    reached = balanced.group_by(keys).agg(pl.col("power").min().alias("lowest"), pl.len().alias("criteria"))
    wanted = balanced["criterion"].n_unique()
    reached = reached.filter((pl.col("lowest") >= target) & (pl.col("criteria") == wanted))
    if reached.height == 0:
        return None
    best = reached.sort("ratings", "participants", "stories_per_temperature").row(0, named=True)
    if criterion is None:
        return best
    return balanced.filter(*(pl.col(key) == best[key] for key in keys)).row(0, named=True)


def _point(value: float) -> str:
    return f"{value:.2f}".replace("0.", ".", 1) if value < 1 else f"{value:.2f}"


def _interval(row: dict) -> str:
    return f"{_point(row['power'])} [{_point(row['power_low'])}, {_point(row['power_high'])}]"


def power_sentences(table: pl.DataFrame, target: float = 0.8, source: str = "the study's") -> list[str]:
    """One sentence per criterion: the smallest design in the grid that reaches ``target`` power, or the best
    the grid reaches; plus the power on the ratings' own design where the table has it.

    Args:
        table: power_grid's table.
        target: the power wanted.
        source: whose variance components, as words ("the study's", "pilot.csv's").

    Returns:
        The sentences.
    """
    sentences = []
    for criterion in dict.fromkeys(table["criterion"].to_list()):
        rows = table.filter(pl.col("criterion") == criterion)
        beta = rows["true_beta"][0]
        lead = (
            f"With {source} variance components, detecting {criterion}'s temperature effect "
            f"(beta = {beta:.3f} per unit of temperature) with {target:.0%} power"
        )
        best = smallest_design(table, target, criterion)
        if best is not None:
            sentence = (
                f"{lead} takes about {best['participants']} raters rating {best['stories_per_participant']} "
                f"stories each ({best['stories_per_temperature']} per temperature, {best['ratings']} ratings; "
                f"power {_interval(best)})"
            )
        else:
            balanced = rows.filter((pl.col("design") == "balanced") & pl.col("power").is_not_nan())
            if balanced.height:
                top = balanced.sort("power", "ratings", descending=[True, False]).row(0, named=True)
                sentence = (
                    f"{lead} is not reached within the grid (at most {_point(top['power'])} with "
                    f"{top['participants']} raters rating {top['stories_per_participant']} stories each, "
                    f"{top['stories_per_temperature']} per temperature)"
                )
            else:
                sentence = f"{lead} is not reached within the grid (no design in it could be built)"
        planned = rows.filter(pl.col("design") == "planned")
        if planned.height:
            seen = planned.row(0, named=True)
            sentence += (
                f"; on the planned survey ({seen['participants']} raters rating "
                f"{seen['stories_per_participant']} stories each, {seen['ratings']} ratings of "
                f"{seen['stories']} stories) power is {_interval(seen)}"
            )
        observed = rows.filter(pl.col("design") == "observed")
        if observed.height:
            seen = observed.row(0, named=True)
            sentence += (
                f"; on the ratings' own design ({seen['participants']} raters, {seen['ratings']} ratings) "
                f"power is {_interval(seen)}"
            )
        sentences.append(sentence + ".")
    return sentences


def design_temperatures(design: RatingDesign) -> tuple[list[float], int]:
    """A design's temperatures and its number of stories at each, for a grid of designs like it.

    Args:
        design: a RatingDesign (survey.rating_design of a planned survey, say).

    Returns:
        The sorted temperatures and the stories at each.
    """
    from tempcreativity.design import DesignError

    values, counts = np.unique(design.story_temperature, return_counts=True)
    if counts.min() != counts.max():
        raise DesignError(
            f"stories-per-temperature: the design has {counts.min()} to {counts.max()} stories at a "
            "temperature; allowed: the same number at every temperature"
        )
    return [float(value) for value in values], int(counts[0])


def power_analysis(
    ratings: pl.DataFrame,
    temperatures: list[float] | None = None,
    participants: tuple[int, ...] = DEFAULT_PARTICIPANTS,
    stories_per_participant: tuple[int, ...] = DEFAULT_STORIES_PER_PARTICIPANT,
    stories_per_temperature: tuple[int, ...] = DEFAULT_STORIES_PER_TEMPERATURE,
    replicates: int = DEFAULT_REPLICATES,
    seed: int = 0,
    alpha: float = 0.05,
    fit: str = "fast",
    target: float = 0.8,
    source: str = "the study's",
    observed: bool = True,
    planned: RatingDesign | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[pl.DataFrame, list[str]]:
    """What `tempcreativity power` and the pipeline's plan_human_study compute from a ratings file: its variance
    components (estimate_components), the power grid on ``temperatures`` (power_grid; with the ratings' own design
    where ``observed``, and the ``planned`` survey's design where given), and one sentence per criterion.

    Args:
        ratings: ratings in the study's format (validated), whose components are simulated from.
        temperatures: the temperatures of the grid's designs; None: the ratings'.
        participants, stories_per_participant, stories_per_temperature: the grid (see power_grid).
        replicates: simulated data sets per design and criterion.
        seed: the random seed.
        alpha: the test's level.
        fit: ``fast`` or ``statsmodels``.
        target: the power the sentences look for.
        source: whose ratings, as words ("the study's", "pilot.csv's").
        observed: simulate the ratings' own design too.
        planned: a survey's design to simulate too.
        progress: called with the number of fits done after each (design, criterion); None: a progress bar
            counts them.

    Returns:
        power_grid's table and power_sentences' sentences.
    """
    if temperatures is None:
        temperatures = sorted(set(ratings["temperature"].to_list()))
    components = estimate_components(ratings)
    table = power_grid(
        components,
        temperatures,
        participants,
        stories_per_participant,
        stories_per_temperature,
        replicates,
        seed,
        alpha,
        fit,
        design_from_ratings(ratings) if observed else None,
        progress,
        planned,
    )
    return table, power_sentences(table, target, source)


def power_figure(table: pl.DataFrame, target: float = 0.8):
    """Power against the number of raters, one line per stories per participant (line style per stories per
    temperature where the grid has several), one panel per criterion, the Monte-Carlo intervals as bands, a dashed
    line at ``target``, the ratings' own design as a black cross and a planned survey's as a red diamond.

    Args:
        table: power_grid's table.
        target: the power wanted.

    Returns:
        The matplotlib Figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "tempcreativity"
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
    criteria = list(dict.fromkeys(table["criterion"].to_list()))
    balanced = table.filter((pl.col("design") == "balanced") & pl.col("power").is_not_nan())
    widths = sorted(balanced["stories_per_participant"].unique().to_list())
    per_temperature = sorted(balanced["stories_per_temperature"].unique().to_list())
    palette = dict(zip(widths, sns.color_palette("colorblind", len(widths))))
    styles = dict(zip(per_temperature, ["-", "--", ":", "-."] * 4))
    figure, axes = plt.subplots(1, len(criteria), figsize=(3.4 * len(criteria), 3.4), sharey=True, squeeze=False)
    for axis, criterion in zip(axes[0], criteria):
        rows = balanced.filter(pl.col("criterion") == criterion)
        for (width, stories), group in rows.group_by(
            "stories_per_participant", "stories_per_temperature", maintain_order=True
        ):
            group = group.sort("participants")
            label = f"{width} stories each" + (f", {stories}/temperature" if len(per_temperature) > 1 else "")
            axis.plot(
                group["participants"],
                group["power"],
                styles[stories],
                marker="o",
                markersize=3.5,
                color=palette[width],
                label=label,
            )
            axis.fill_between(
                group["participants"],
                group["power_low"],
                group["power_high"],
                color=palette[width],
                alpha=0.15,
                linewidth=0,
            )
        for kind, color, marker, label in (
            ("observed", "black", "x", "the ratings' own design"),
            ("planned", "crimson", "D", "the planned survey"),
        ):
            found = table.filter((pl.col("criterion") == criterion) & (pl.col("design") == kind))
            if found.height:
                seen = found.row(0, named=True)
                axis.errorbar(
                    [seen["participants"]],
                    [seen["power"]],
                    color=color,
                    marker=marker,
                    markersize=7 if marker == "x" else 5,
                    linestyle="none",
                    capsize=3,
                    label=label,
                    yerr=[[seen["power"] - seen["power_low"]], [seen["power_high"] - seen["power"]]],
                )
        axis.axhline(target, color="grey", linestyle="--", linewidth=1)
        axis.set_title(f"{criterion} (beta = {rows['true_beta'][0] if rows.height else math.nan:.2f})")
        axis.set_xlabel("raters")
        axis.set_ylim(0, 1)
    axes[0][0].set_ylabel(f"power (alpha = {table['alpha'][0]:g})")
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False, bbox_to_anchor=(0.5, -0.08))
    figure.tight_layout()
    return figure
