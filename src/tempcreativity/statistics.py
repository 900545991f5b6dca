"""Statistics over the scores: per-temperature summaries with bootstrap CIs, within-temperature diversity,
trends with temperature (Spearman with bootstrap CI; a linear (mixed) model), and a 2-D PCA of the embeddings.

Exemplars are left out of summaries and trends: they are the reference every other story is measured against."""

from __future__ import annotations

import math
import warnings

import numpy as np
import polars as pl
from scipy import stats

from tempcreativity import metrics
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
        (values,), np.mean, n_resamples=resamples, confidence_level=CONFIDENCE, method="percentile",
        rng=np.random.default_rng(seed),
    )  # fmt: skip
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def summarise(scores: pl.DataFrame, texts: pl.Series, vectors: np.ndarray, resamples: int) -> pl.DataFrame:
    """One row per prompt x temperature: n, then mean, median, CI bounds of every score, then diversity
    (mean pairwise cosine distance of the embeddings), self-similarity (mean pairwise character edit
    similarity), and the shares of stories identical to the exemplar and duplicated within the cell."""
    frame = scores.with_columns(text=texts, row=pl.int_range(pl.len()))
    rows = []
    for (prompt_id, temperature), cell in frame.filter(~pl.col("is_exemplar")).group_by(
        ["prompt_id", "temperature"], maintain_order=True
    ):
        row = {"prompt_id": prompt_id, "temperature": temperature, "n": cell.height}
        for score in SCORE_LABELS:
            values = cell[score].cast(pl.Float64).to_numpy()
            low, high = bootstrap_mean_ci(values, resamples)
            row |= {f"{score}_mean": float(np.nanmean(values)), f"{score}_median": float(np.nanmedian(values)),
                    f"{score}_ci_low": low, f"{score}_ci_high": high}  # fmt: skip
        cell_texts = cell["text"].to_list()
        row |= {
            "diversity": metrics.mean_pairwise_cosine_distance(vectors[cell["row"].to_numpy()]),
            "self_similarity": metrics.mean_pairwise_edit_similarity(cell_texts),
            "share_identical_to_exemplar": float(cell["identical_to_exemplar"].mean()),
            "share_duplicates": 1.0 - len(set(cell_texts)) / len(cell_texts),
        }
        rows.append(row)
    return pl.DataFrame(rows).sort(["prompt_id", "temperature"])


def spearman_with_ci(x: np.ndarray, y: np.ndarray, resamples: int, seed: int = 0) -> dict[str, float]:
    """Spearman's rho of y with x, its p-value, and a percentile bootstrap CI (resampling stories)."""
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"rho": math.nan, "p_value": math.nan, "rho_ci_low": math.nan, "rho_ci_high": math.nan, "n": len(x)}
    rho, p_value = stats.spearmanr(x, y)
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(resamples):
        index = rng.integers(0, len(x), len(x))
        if np.ptp(x[index]) > 0 and np.ptp(y[index]) > 0:
            boot.append(stats.spearmanr(x[index], y[index]).statistic)
    alpha = (1 - CONFIDENCE) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha]) if boot else (math.nan, math.nan)
    return {"rho": float(rho), "p_value": float(p_value), "rho_ci_low": float(low), "rho_ci_high": float(high), "n": len(x)}


def linear_trend(frame: pl.DataFrame, score: str) -> dict[str, float | str]:
    """Slope of ``score`` on temperature: a linear mixed model with a random intercept per prompt when there are
    several prompts (statsmodels mixedlm, REML), ordinary least squares otherwise."""
    import statsmodels.formula.api as smf

    data = frame.select("prompt_id", "temperature", pl.col(score).cast(pl.Float64).alias("y")).drop_nans().to_pandas()
    data = data.dropna()
    empty = {"model": "", "slope": math.nan, "slope_se": math.nan, "slope_ci_low": math.nan, "slope_ci_high": math.nan, "slope_p": math.nan}
    if len(data) < 3 or data["y"].std() == 0 or data["temperature"].std() == 0:
        return empty
    several_prompts = data["prompt_id"].nunique() > 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on tiny grids; the estimates are still reported
        if several_prompts:
            fitted = smf.mixedlm("y ~ temperature", data, groups=data["prompt_id"]).fit(reml=True)
        else:
            fitted = smf.ols("y ~ temperature", data).fit()
    low, high = fitted.conf_int(alpha=1 - CONFIDENCE).loc["temperature"]
    return {
        "model": "mixedlm" if several_prompts else "ols",
        "slope": float(fitted.params["temperature"]),
        "slope_se": float(fitted.bse["temperature"]),
        "slope_ci_low": float(low),
        "slope_ci_high": float(high),
        "slope_p": float(fitted.pvalues["temperature"]),
    }


def trends(scores: pl.DataFrame, resamples: int) -> pl.DataFrame:
    """One row per score: Spearman correlation with temperature (all prompts pooled) and the linear trend."""
    stories = scores.filter(~pl.col("is_exemplar"))
    temperature = stories["temperature"].to_numpy()
    rows = []
    for score, label in SCORE_LABELS.items():
        values = stories[score].cast(pl.Float64).to_numpy()
        rows.append({"score": score, "label": label, **spearman_with_ci(temperature, values, resamples),
                     **linear_trend(stories, score)})  # fmt: skip
    return pl.DataFrame(rows)


def pca_2d(scores: pl.DataFrame, vectors: np.ndarray) -> pl.DataFrame:
    """A 2-D PCA (scikit-learn) fitted on every story and exemplar; explained variance ratios as columns."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=0)
    coordinates = pca.fit_transform(np.asarray(vectors, dtype=np.float64))
    ratio = pca.explained_variance_ratio_
    return scores.select("story_id", "prompt_id", "temperature", "is_exemplar").with_columns(
        pc1=coordinates[:, 0], pc2=coordinates[:, 1], pc1_variance=float(ratio[0]), pc2_variance=float(ratio[1])
    )
