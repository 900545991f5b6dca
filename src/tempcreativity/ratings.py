"""The study's human-evaluation analysis: read ratings in the study's released format, and compute its two tables.

Table 1 (descriptives): per rating item its mean, sample SD and Cronbach's alpha, with stories as the items of
the scale and participants as the subjects (each participant rated only some stories: pingouin's default pairwise
handling of the missing cells), plus a ``mean`` row.

Table 2 (mixed models): for each rating and each predictor, ``rating ~ predictor`` with a random intercept per
participant (statsmodels mixedlm, REML): beta, SE, p, and two R^2 pairs:
- ``r2m``/``r2c`` as the study computed them: fixed-effect variance = variance of the model's ``fittedvalues``
  (which include the predicted random intercepts), random = the random-intercept variance, residual = variance
  of the residuals; r2m = f / (f + r + e), r2c = (f + r) / (f + r + e).
- ``r2m_nakagawa``/``r2c_nakagawa``: the standard Nakagawa-Schielzeth definition, with the variance of the
  fixed-effect prediction X*beta and the model's residual variance (its scale).
The study's pair uses sample variances (ddof = 1: pandas ``.var()``, as the study's code did; with population
variances novelty's R^2c would be .3857, not the printed .3849); Nakagawa's uses the population variance of X*beta."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import polars as pl

RATING_ITEMS = ("novelty", "typicality", "cohesion", "coherence")
REQUIRED_COLUMNS = ("story_id", "temperature", "participant_id", *RATING_ITEMS)
SCORE_PREDICTORS = ("perplexity", "cosine_similarity", "edit_distance")
RATING_MIN, RATING_MAX = 1.0, 5.0


class RatingsError(ValueError):
    """A ratings file the analysis cannot use; the message names the columns or rows."""


def load_ratings(path: str | Path) -> pl.DataFrame:
    """Read a ratings CSV (one row per rating; an unnamed leading index column, as released, is dropped) and
    check it: the required columns present, ratings numbers in [1, 5], temperatures in [0, 2], nothing missing,
    each participant rating each story at most once, at least two participants."""
    path = Path(path)
    if not path.is_file():
        raise RatingsError(f"ratings: {path} does not exist")
    with path.open("rb") as handle:
        head = handle.read(8192)
    if b"\0" in head:
        raise RatingsError(f"ratings: {path} is not a text file (it holds NUL bytes); expected a comma-separated CSV")
    try:
        frame = pl.read_csv(path, infer_schema_length=10_000)
    except pl.exceptions.NoDataError:
        raise RatingsError(f"ratings: {path} is empty; expected a CSV with a header and one row per rating") from None
    except (pl.exceptions.ComputeError, UnicodeDecodeError) as error:
        raise RatingsError(f"ratings: {path} is not a readable UTF-8 CSV ({error})") from None
    unnamed = [name for name in frame.columns if name == "" or name.startswith("column_") or name.startswith("Unnamed")]
    frame = frame.drop(unnamed)
    if len(frame.columns) == 1 and ";" in frame.columns[0]:
        raise RatingsError(
            f"ratings: {path} seems to be separated by ';' (its header is {frame.columns[0]!r}); "
            "the ratings file must be comma-separated"
        )
    return validate_ratings(frame)


def validate_ratings(frame: pl.DataFrame) -> pl.DataFrame:
    missing = [name for name in REQUIRED_COLUMNS if name not in frame.columns]
    if missing:
        raise RatingsError(f"ratings: missing column(s) {', '.join(missing)}; required: {', '.join(REQUIRED_COLUMNS)}")
    if frame.height == 0:
        raise RatingsError("ratings: the file has a header but no rating rows")
    frame = frame.with_columns(pl.col("story_id", "participant_id").cast(pl.String))
    for item in (*RATING_ITEMS, "temperature"):
        try:
            frame = frame.with_columns(pl.col(item).cast(pl.Float64, strict=True))
        except pl.exceptions.InvalidOperationError as error:
            raise RatingsError(f"ratings: column {item} must hold numbers ({error})") from None
    for column in REQUIRED_COLUMNS:
        empty = frame.with_row_index("row").filter(pl.col(column).is_null())["row"].to_list()
        if empty:
            raise RatingsError(f"ratings: column {column} has missing values in data row(s) {_rows(empty)}")
    bounds = {item: (RATING_MIN, RATING_MAX, "numbers from 1 to 5") for item in RATING_ITEMS}
    bounds["temperature"] = (0.0, 2.0, "finite numbers from 0 to 2")
    for column, (low, high, allowed) in bounds.items():
        outside = frame.with_row_index("row").filter(~pl.col(column).is_between(low, high) | pl.col(column).is_nan())
        if outside.height:
            values = ", ".join(f"{value:g}" for value in outside[column].head(5))
            raise RatingsError(
                f"ratings: column {column} has values outside [{low:g}, {high:g}] ({values}) in data row(s) "
                f"{_rows(outside['row'].to_list())}; allowed: {allowed}"
            )
    repeated = frame.with_row_index("row").filter(pl.struct("story_id", "participant_id").is_duplicated())
    if repeated.height:
        pairs = repeated.group_by("story_id", "participant_id", maintain_order=True).agg("row")
        listed = "; ".join(
            f"story {story} by participant {person} in data rows {_rows(rows)}"
            for story, person, rows in pairs.head(5).iter_rows()
        )
        raise RatingsError(
            f"ratings: {pairs.height} (story, participant) pair(s) rated more than once ({listed}"
            f"{'; ...' if pairs.height > 5 else ''}); each participant may rate each story once (was the file "
            "concatenated with itself?)"
        )
    if frame["participant_id"].n_unique() < 2:
        raise RatingsError(
            "ratings: the mixed models need ratings from at least 2 participants (random intercept per participant); "
            f"found {frame['participant_id'].n_unique()}"
        )
    return frame


def _rows(indices: list[int]) -> str:
    shown = ", ".join(str(index + 1) for index in indices[:10])
    return shown + (f" and {len(indices) - 10} more" if len(indices) > 10 else "")


def cronbach_alpha(ratings: pl.DataFrame, item: str) -> float:
    """Cronbach's alpha of one rating item: stories as the scale's items, participants as subjects."""
    import pingouin

    wide = ratings.to_pandas().pivot_table(index="participant_id", columns="story_id", values=item)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # constant items (a judge that always answers the same) give nan
        return float(pingouin.cronbach_alpha(data=wide)[0])


def descriptives(ratings: pl.DataFrame) -> pl.DataFrame:
    """Table 1: item, mean, sd (sample), cronbach_alpha; then a ``mean`` row averaging each column."""
    rows = [
        {"item": item, "mean": ratings[item].mean(), "sd": ratings[item].std(ddof=1), "cronbach_alpha": cronbach_alpha(ratings, item)}
        for item in RATING_ITEMS
    ]
    table = pl.DataFrame(rows)
    return pl.concat([table, table.select(pl.lit("mean").alias("item"), pl.exclude("item").mean())])


NOT_ESTIMABLE = dict.fromkeys(("beta", "se", "p", "r2c", "r2m", "r2c_nakagawa", "r2m_nakagawa"), math.nan)


def fit_mixed_model(data, rating: str, predictor: str) -> dict[str, float]:
    """``rating ~ predictor`` with a random intercept per participant; beta, SE, p and both R^2 pairs.
    All nan when the rating or the predictor does not vary (a judge that always answers the same, say)."""
    import statsmodels.formula.api as smf

    if data[rating].nunique() < 2 or data[predictor].nunique() < 2:
        return dict(NOT_ESTIMABLE)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # boundary and convergence chatter: the estimates are reported as they are
        fitted = smf.mixedlm(f"{rating} ~ {predictor}", data, groups=data["participant_id"]).fit(reml=True)
        return _mixed_model_summary(fitted, predictor)


def _mixed_model_summary(fitted, predictor: str) -> dict[str, float]:
    random_variance = float(np.asarray(fitted.cov_re)[0, 0])
    fixed_prediction = fitted.model.exog @ fitted.fe_params.to_numpy()
    try:
        fitted_values = np.asarray(fitted.fittedvalues)
    except ValueError:  # random-intercept variance estimated at 0: every predicted random intercept is 0
        fitted_values = fixed_prediction
    residual = float(np.var(fitted.model.endog - fitted_values, ddof=1))  # pandas .var(), as the study's code
    fitted_variance = float(np.var(fitted_values, ddof=1))
    study_total = fitted_variance + random_variance + residual
    fixed_variance = float(np.var(fixed_prediction))
    nakagawa_total = fixed_variance + random_variance + float(fitted.scale)
    return {
        "beta": float(fitted.fe_params[predictor]),
        "se": float(fitted.bse_fe[predictor]),
        "p": float(fitted.pvalues[predictor]),
        "r2c": (fitted_variance + random_variance) / study_total,
        "r2m": fitted_variance / study_total,
        "r2c_nakagawa": (fixed_variance + random_variance) / nakagawa_total,
        "r2m_nakagawa": fixed_variance / nakagawa_total,
    }


def mixed_models(ratings: pl.DataFrame, scores: pl.DataFrame | None = None) -> pl.DataFrame:
    """Table 2: one row per rating x predictor. Predictors: temperature always; perplexity, cosine similarity and
    edit distance to the exemplar when ``scores`` (joined on story_id) has them for the rated stories."""
    data = ratings
    predictors = ["temperature"]
    if scores is not None:
        available = [name for name in SCORE_PREDICTORS if name in scores.columns]
        data = ratings.join(scores.select("story_id", *available), on="story_id", how="left")
        predictors += [name for name in available if data[name].is_not_null().all() and data[name].is_not_nan().all()]
    frame = data.to_pandas()
    rows = []
    for rating in RATING_ITEMS:
        for predictor in predictors:
            fit = fit_mixed_model(frame, rating, predictor)
            rows.append({"rating": rating, "predictor": predictor, **fit, "n_obs": len(frame),
                         "n_groups": frame["participant_id"].nunique()})  # fmt: skip
    return pl.DataFrame(rows)


def write_tables(ratings: pl.DataFrame, out_dir: str | Path, scores: pl.DataFrame | None = None) -> dict[str, Path]:
    """Write ratings_descriptives.csv and ratings_lme.csv into ``out_dir`` and return their paths. Both tables are
    computed before either is written, and then written as a set (atomically), so a failure leaves earlier
    tables as they were."""
    from tempcreativity.io import write_texts_atomic

    out_dir = Path(out_dir)
    tables = {
        out_dir / "ratings_descriptives.csv": descriptives(ratings).write_csv(float_precision=6),
        out_dir / "ratings_lme.csv": mixed_models(ratings, scores).write_csv(float_precision=6),
    }
    write_texts_atomic(tables)
    return dict(zip(("descriptives", "lme"), tables))


def beta_interval(row: dict[str, float], z: float = 1.959963984540054) -> tuple[float, float]:
    """The 95% Wald interval of a beta."""
    if math.isnan(row["se"]):
        return math.nan, math.nan
    return row["beta"] - z * row["se"], row["beta"] + z * row["se"]
