"""Statistics over the scores: per-cell summaries with bootstrap CIs, within-cell diversity, trends with
temperature and with every other swept sampling setting (Spearman with a bootstrap CI and a p-value over the
design's units; a linear (mixed) model with the design's random effects), and a 2-D PCA of the embeddings.
A cell is one model x prompt x value of every swept setting x temperature (see ``cells``).

Exemplars are left out of summaries and trends: they are the reference every other story is measured against."""

from __future__ import annotations

import math
import warnings

import numpy as np
import polars as pl
from scipy import stats

from tempcreativity import metrics
from tempcreativity.axes import NUMERIC_AXES
from tempcreativity.cells import cell_keys, levels_label, swept_axes
from tempcreativity.progress import bar
from tempcreativity.scoring import SCORE_LABELS

CONFIDENCE = 0.95


def bootstrap_mean_ci(values: np.ndarray, resamples: int, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (nan for fewer than two finite values); seeded, so reproducible."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return math.nan, math.nan
    if np.ptp(values) == 0:
        return float(values[0]), float(values[0])
    result = stats.bootstrap(
        (values,),
        np.mean,
        n_resamples=resamples,
        confidence_level=CONFIDENCE,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def summarise(scores: pl.DataFrame, texts: pl.Series, vectors: np.ndarray, resamples: int) -> pl.DataFrame:
    """One row per cell (its ``cell_keys`` columns, then n and n_scored), then mean, median, CI bounds of every
    score, then diversity (mean pairwise cosine distance of the embeddings, with a percentile bootstrap CI over the
    stories' mean distances to the others of the cell), self-similarity (mean pairwise character edit similarity),
    and the shares of stories identical to the exemplar and duplicated within the cell.

    ``n`` counts the cell's stories, ``n_scored`` those with a defined perplexity: a story that ended before its
    first token (a stop string at its start) is a real output, kept in ``n`` and in the diversity and shares, but
    has no perplexity, so every score's mean, median and CI are over the scored stories only (and, for a score
    a story can lack, such as distinct-3 of a two-word story, over those that have it)."""
    frame = scores.with_columns(text=texts, row=pl.int_range(pl.len()))
    keys = cell_keys(scores)
    stories = frame.filter(~pl.col("is_exemplar"))
    cells = stories.group_by(keys, maintain_order=True)
    rows = []
    for values, cell in bar(cells, "Summarised cells", "cell", total=stories.select(keys).n_unique()):
        scored = cell.filter(pl.col("perplexity").cast(pl.Float64).is_finite())
        row = {**dict(zip(keys, values)), "n": cell.height, "n_scored": scored.height}
        for score in SCORE_LABELS:
            values = scored[score].cast(pl.Float64).to_numpy()
            low, high = bootstrap_mean_ci(values, resamples)
            finite = values[np.isfinite(values)]
            row |= {
                f"{score}_mean": float(np.mean(finite)) if finite.size else math.nan,
                f"{score}_median": float(np.median(finite)) if finite.size else math.nan,
                f"{score}_ci_low": low,
                f"{score}_ci_high": high,
            }
        cell_texts = cell["text"].to_list()
        to_others = metrics.mean_cosine_distance_to_others(vectors[cell["row"].to_numpy()])
        low, high = bootstrap_mean_ci(to_others, resamples)
        row |= {
            "diversity": float(np.mean(to_others)) if cell.height > 1 else math.nan,
            "diversity_ci_low": low,
            "diversity_ci_high": high,
            "self_similarity": metrics.mean_pairwise_edit_similarity(cell_texts),
            "share_identical_to_exemplar": float(cell["identical_to_exemplar"].mean()),
            "share_duplicates": 1.0 - len(set(cell_texts)) / len(cell_texts),
        }
        rows.append(row)
    return pl.DataFrame(rows).sort(keys)


def design_units(stories: pl.DataFrame, seeding: str, axis: str = "temperature") -> dict[str, object]:
    """The design's units for the trend statistics with ``axis`` (exemplars already left out; the stories of one
    level of every other axis).

    - random effects of the mixed model: the prompt when there are several prompts (prompts differ in level),
      and, under ``seeding: shared``, the seed when there are several (its stories share random numbers across
      temperatures and prompts: the paired unit);
    - bootstrap: under ``shared`` whole seeds are resampled (each with its stories at every temperature and
      prompt); under ``independent`` stories are resampled within each prompt x temperature cell (they are
      independent draws; the design's cells stay fixed);
    - permutation test: the axis' values are shuffled within blocks (prompt, and prompt x seed under ``shared``)."""
    several_prompts = stories["prompt_id"].n_unique() > 1
    shared = seeding == "shared" and "seed" in stories.columns and stories["seed"].n_unique() > 1
    random_effects = (["prompt_id"] if several_prompts else []) + (["seed"] if shared else [])
    if shared:
        clusters, strata = stories["seed"].cast(pl.String), pl.Series([""] * stories.height)
        blocks = stories.select(pl.concat_str("prompt_id", pl.col("seed").cast(pl.String), separator="|")).to_series()
    else:
        clusters = pl.Series(range(stories.height)).cast(pl.String)
        strata = stories.select(pl.concat_str("prompt_id", pl.col(axis).cast(pl.String), separator="|")).to_series()
        blocks = stories["prompt_id"]
    return {
        "random_effects": random_effects,
        "clusters": clusters.to_numpy(),
        "strata": strata.to_numpy(),
        "blocks": blocks.to_numpy(),
        "unit": "seeds (all stories of a seed)" if shared else "stories within cells",
    }


def _cluster_members(clusters: np.ndarray, strata: np.ndarray) -> list[list[np.ndarray]]:
    """Per stratum, the row indices of each of its clusters."""
    groups = []
    for stratum in np.unique(strata):
        in_stratum = np.flatnonzero(strata == stratum)
        names, inverse = np.unique(clusters[in_stratum], return_inverse=True)
        groups.append([in_stratum[inverse == k] for k in range(len(names))])
    return groups


def _cluster_resample(groups: list[list[np.ndarray]], rng: np.random.Generator) -> np.ndarray:
    """Row indices of one cluster bootstrap sample: within each stratum, its clusters drawn with replacement."""
    return np.concatenate([members[k] for members in groups for k in rng.integers(0, len(members), len(members))])


# Permutations shuffled at once: a bound on the rows of one batch's matrices (their size is this times the stories).
PERMUTATION_BATCH = 256


def _block_permutations(
    rank_x: np.ndarray, blocks: np.ndarray, permutations: int, rng: np.random.Generator
) -> np.ndarray:
    """The ranks of x shuffled within blocks, one permutation a row, each row centred on its mean.

    Row p is the p-th loop of a one-at-a-time test: its stories' random keys are the p-th ``rng.random(n)`` (drawn
    in batches of rows, the same stream), sorted within blocks (``lexsort``, stable); every row's arithmetic is the
    1-D arithmetic of that loop, so each rho, and the p-value, is the same to the bit."""
    n = len(rank_x)
    block_ids = np.unique(blocks, return_inverse=True)[1]
    base = np.lexsort((np.arange(n), block_ids))
    centred = np.empty((permutations, n))
    for start in range(0, permutations, PERMUTATION_BATCH):
        keys = rng.random((min(PERMUTATION_BATCH, permutations - start), n))
        shuffled = np.lexsort((keys, np.broadcast_to(block_ids, keys.shape)), axis=-1)
        permuted = np.empty_like(keys)
        permuted[:, base] = rank_x[shuffled]
        centred[start : start + len(keys)] = permuted - permuted.mean(axis=1, keepdims=True)
    return centred


def _within_block_permutation_p(
    centred_permuted: np.ndarray, rank_x: np.ndarray, y: np.ndarray, observed: float
) -> float:
    """Two-sided p of Spearman's rho when temperatures are shuffled within blocks (exchangeable under no trend);
    ``centred_permuted`` holds the shuffled ranks of x (``_block_permutations``), one permutation a row."""
    rank_y = stats.rankdata(y)
    centred_y = rank_y - rank_y.mean()
    scale = np.sqrt(((rank_x - rank_x.mean()) ** 2).sum() * (centred_y**2).sum())
    rho = (centred_permuted * centred_y).sum(axis=1) / scale
    extreme = int(np.count_nonzero(np.abs(rho) >= abs(observed) - 1e-12))
    return (extreme + 1) / (len(centred_permuted) + 1)


def _centred_ranks(rows: np.ndarray) -> np.ndarray:
    """The ranks of each row (ties get their mean rank), centred on the row's mean."""
    ranks = stats.rankdata(rows, axis=1)
    ranks -= ranks.mean(axis=1, keepdims=True)
    return ranks


def _rho_of_centred_ranks(ranks_x: np.ndarray, ranks_y: np.ndarray, squares_x: np.ndarray | None = None) -> np.ndarray:
    """Pearson's r of each row of two matrices of centred ranks (``squares_x``: the row sums of ``ranks_x**2``,
    when known); NaN where a row is constant."""
    if squares_x is None:
        squares_x = (ranks_x**2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (ranks_x * ranks_y).sum(axis=1) / np.sqrt(squares_x * (ranks_y**2).sum(axis=1))
    return np.clip(rho, -1.0, 1.0)


def _spearman_rows(x_rows: np.ndarray, y_rows: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row of ``x_rows`` with the same row of ``y_rows``, all rows at once: Pearson's r of
    their ranks (ties get their mean rank), as scipy.stats.spearmanr computes it for one pair; NaN where a row is
    constant."""
    return _rho_of_centred_ranks(_centred_ranks(x_rows), _centred_ranks(y_rows))


class SpearmanDraws:
    """The random draws of ``spearman_with_ci`` over one design's ``units``, kept to be reused by every score.

    The bootstrap's resamples and the permutation test's shuffles depend on the seed, the number of resamples,
    x and the units of the stories kept (those with x and y finite), never on y: the scores of one group of
    ``trends`` share them (a score with NaNs keeps other stories and gets draws of its own). Passing the same
    ``SpearmanDraws`` to every call gives each call exactly what it computes without one."""

    def __init__(self, units: dict | None = None):
        self.units = units
        self._plans: dict[tuple, dict[str, object]] = {}

    def plan(self, x: np.ndarray, keep: np.ndarray, resamples: int, seed: int) -> dict[str, object]:
        """The draws for the kept stories ``x`` (already ``x[keep]``): per resample size, the resamples' row
        indices and x's centred ranks in them (with their row sums of squares); the shuffled ranks of x of the
        permutation test (None without blocks); x's ranks."""
        key = (resamples, seed, keep.tobytes(), x.tobytes())
        if key not in self._plans:
            self._plans[key] = self._draw(x, keep, resamples, seed)
        return self._plans[key]

    def _draw(self, x: np.ndarray, keep: np.ndarray, resamples: int, seed: int) -> dict[str, object]:
        if self.units is None:
            clusters, strata, blocks = np.arange(len(x)).astype(str), np.zeros(len(x)), None
        else:
            units = self.units
            clusters, strata, blocks = units["clusters"][keep], units["strata"][keep], units["blocks"][keep]
        rng = np.random.default_rng(seed)
        groups = _cluster_members(clusters, strata)
        samples_by_size: dict[int, list[np.ndarray]] = {}  # resamples of clusters of unequal size differ in size
        for _ in range(resamples):
            index = _cluster_resample(groups, rng)
            samples_by_size.setdefault(len(index), []).append(index)
        bootstrap = []
        for index in map(np.vstack, samples_by_size.values()):
            ranks_x = _centred_ranks(x[index])
            bootstrap.append((index, ranks_x, (ranks_x**2).sum(axis=1)))
        rank_x = stats.rankdata(x)
        permuted = None if blocks is None else _block_permutations(rank_x, blocks, resamples, rng)
        return {"bootstrap": bootstrap, "permuted": permuted, "rank_x": rank_x}


def spearman_with_ci(
    x: np.ndarray,
    y: np.ndarray,
    resamples: int,
    seed: int = 0,
    units: dict | None = None,
    draws: SpearmanDraws | None = None,
) -> dict[str, float]:
    """Spearman's rho of y with x, a percentile bootstrap CI and a p-value.

    Without ``units`` every story is its own unit: the bootstrap resamples stories and p is scipy's. With the
    ``units`` of ``design_units``, the bootstrap resamples its clusters within its strata and p comes from a
    permutation test that shuffles x within its blocks (``resamples`` permutations). ``draws`` (a
    ``SpearmanDraws`` of the same ``units``) keeps the random draws for the next call with the same x, kept
    stories, resamples and seed: the result is the same, computed sooner."""
    if draws is None:
        draws = SpearmanDraws(units)
    elif draws.units is not units:
        raise ValueError("spearman_with_ci: draws were made for other units than the units given")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"rho": math.nan, "p_value": math.nan, "rho_ci_low": math.nan, "rho_ci_high": math.nan, "n": len(x)}
    rho, p_value = stats.spearmanr(x, y)
    plan = draws.plan(x, keep, resamples, seed)
    boot = np.concatenate(
        [
            _rho_of_centred_ranks(ranks_x, _centred_ranks(y[index]), squares_x)
            for index, ranks_x, squares_x in plan["bootstrap"]
        ]
    )
    boot = boot[np.isfinite(boot)]  # a resample with x or y constant has no rho
    alpha = (1 - CONFIDENCE) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha]) if boot.size else (math.nan, math.nan)
    if plan["permuted"] is not None:
        p_value = _within_block_permutation_p(plan["permuted"], plan["rank_x"], y, rho)
    return {
        "rho": float(rho),
        "p_value": float(p_value),
        "rho_ci_low": float(low),
        "rho_ci_high": float(high),
        "n": len(x),
    }


# Scores whose linear trend is fitted on their logarithm (perplexity grows roughly exponentially with temperature).
LOG_SCALE_SCORES = {"perplexity"}


def linear_trend(
    frame: pl.DataFrame, score: str, random_effects: list[str] | None = None, axis: str = "temperature"
) -> dict[str, float | str]:
    """Slope of ``score`` (of its logarithm for perplexity) on ``axis`` (temperature, or a swept setting).

    ``random_effects`` (default: the prompt when there are several) lists the grouping columns with a random
    intercept: none gives ordinary least squares; one, a linear mixed model (statsmodels mixedlm, REML); two
    (prompt and seed under shared seeding), crossed random intercepts as variance components."""
    import statsmodels.formula.api as smf

    if random_effects is None:
        random_effects = ["prompt_id"] if frame["prompt_id"].n_unique() > 1 else []
    response = pl.col(score).cast(pl.Float64)
    if score in LOG_SCALE_SCORES:
        response = response.log()
    data = frame.select(
        "prompt_id",
        pl.col(axis).cast(pl.Float64).alias("x"),
        pl.col("seed").cast(pl.String) if "seed" in frame.columns else pl.lit("").alias("seed"),
        response.alias("y"),
    )
    data = data.filter(pl.col("y").is_finite()).to_pandas().dropna()
    response_name = f"log {score}" if score in LOG_SCALE_SCORES else score
    empty = {
        "model": "",
        "response": response_name,
        "slope": math.nan,
        "slope_se": math.nan,
        "slope_ci_low": math.nan,
        "slope_ci_high": math.nan,
        "slope_p": math.nan,
    }
    if len(data) < 3 or data["y"].std() == 0 or data["x"].std() == 0:
        return empty
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on tiny grids; the estimates are still reported
        if not random_effects:
            fitted = smf.ols("y ~ x", data).fit()
        elif len(random_effects) == 1:
            fitted = smf.mixedlm("y ~ x", data, groups=data[random_effects[0]]).fit(reml=True)
        else:
            data["all"] = 1
            components = {name: f"0 + C({name})" for name in random_effects}
            fitted = smf.mixedlm("y ~ x", data, groups="all", re_formula="0", vc_formula=components).fit(reml=True)
    low, high = fitted.conf_int(alpha=1 - CONFIDENCE).loc["x"]
    names = {"prompt_id": "prompt", "seed": "seed"}
    model = "ols" if not random_effects else "mixedlm: " + " + ".join(f"(1 | {names[name]})" for name in random_effects)
    return {
        "model": model,
        "response": response_name,
        "slope": float(fitted.params["x"]),
        "slope_se": float(fitted.bse["x"]),
        "slope_ci_low": float(low),
        "slope_ci_high": float(high),
        "slope_p": float(fitted.pvalues["x"]),
    }


def trend_axes(stories: pl.DataFrame) -> list[str]:
    """The axes scores trend with: temperature, then every swept numeric setting (truncation is a level)."""
    return ["temperature"] + [name for name in swept_axes(stories) if name in NUMERIC_AXES]


def trends(scores: pl.DataFrame, resamples: int, seeding: str = "independent") -> pl.DataFrame:
    """Per axis (``trend_axes``) and per level of the other axes and model (``within``: the cells of one model at
    fixed values of every other swept setting, temperature included), one row per score: Spearman correlation
    with the axis (prompts pooled; bootstrap and permutation test over the design's units) and the linear trend
    with the design's random effects (see ``design_units``). Without swept settings: one group per model, the
    study's trends with temperature. top-k's 'all' (-1 or 0) has no place on its scale and is left out of its
    trend."""
    stories = scores.filter(~pl.col("is_exemplar"))
    swept = swept_axes(stories)
    fitted = []  # (axis, its levels, their values, the group's stories), in the table's order
    for axis in trend_axes(stories):
        data = stories.filter(pl.col("top_k") > 0) if axis == "top_k" else stories
        levels = (["model_id"] if "model_id" in data.columns else []) + [
            name for name in [*swept, "temperature"] if name != axis
        ]
        groups = data.group_by(levels, maintain_order=True) if levels else [((), data)]
        fitted += [
            (axis, levels, values, group)
            for values, group in groups
            if axis == "temperature" or group[axis].n_unique() >= 2
        ]
    rows = []
    with bar(desc="Trends fitted", unit="trend", total=len(fitted) * len(SCORE_LABELS)) as progress:
        for axis, levels, values, group in fitted:
            level = dict(zip(levels, values))
            units = design_units(group, seeding, axis)
            draws = SpearmanDraws(units)  # the scores of a group share their resamples and permutations
            x = group[axis].cast(pl.Float64).to_numpy()
            within = levels_label(level, [name for name in levels if name != "model_id"])
            for score, label in SCORE_LABELS.items():
                y = group[score].cast(pl.Float64).to_numpy()
                rows.append(
                    {
                        "axis": axis,
                        "model_id": level.get("model_id", ""),
                        "within": within,
                        "score": score,
                        "label": label,
                        **spearman_with_ci(x, y, resamples, units=units, draws=draws),
                        **linear_trend(group, score, units["random_effects"], axis),
                        "resampled": units["unit"],
                    }
                )
                progress.update()
    return pl.DataFrame(rows)


def pca_2d(scores: pl.DataFrame, vectors: np.ndarray) -> pl.DataFrame:
    """A 2-D PCA (scikit-learn) fitted on every story and exemplar; explained variance ratios as columns."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=0)
    coordinates = pca.fit_transform(np.asarray(vectors, dtype=np.float64))
    ratio = pca.explained_variance_ratio_
    identity = [column for column in ("story_id", "model_id", "prompt_id") if column in scores.columns]
    return scores.select(*identity, *swept_axes(scores), "temperature", "is_exemplar").with_columns(
        pc1=coordinates[:, 0], pc2=coordinates[:, 1], pc1_variance=float(ratio[0]), pc2_variance=float(ratio[1])
    )
