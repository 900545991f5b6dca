"""The study's human-evaluation analysis: read ratings in the study's released format, and compute its two tables.

Table 1 (descriptives): per rating item its mean, sample SD and Cronbach's alpha, with stories as the items of
the scale and participants as the subjects (each participant rated only some stories: pingouin's default pairwise
handling of the missing cells), plus a ``mean`` row. Beside the study's alpha, two agreement statistics made for
incomplete designs: Krippendorff's alpha (interval metric; the ``krippendorff`` package) over the stories rated by
at least two people, and the ICC of a single rating (absolute agreement, the ICC(2,1) of an incomplete crossed
design): the story variance over the total variance of ``rating ~ 1 + (1 | participant) + (1 | story)`` (REML).

Table 2 (mixed models): for each rating and each predictor, ``rating ~ predictor`` with random intercepts
(statsmodels mixedlm, REML), in one or two models per ``random_effects``:
- ``participant``: a random intercept per participant, the study's model;
- ``crossed``: crossed random intercepts per participant and per story (variance components), since each story
  was rated by several people and its ratings are not independent;
- ``none``: ordinary least squares, for ratings with one rating per story from one rater (the LLM judge).
Each row gives beta, SE, p, and two R^2 pairs:
- ``r2m``/``r2c`` as the study computed them: fixed-effect variance = variance of the model's ``fittedvalues``
  (which include the predicted random intercepts), random = the random-intercept variance, residual = variance
  of the residuals; r2m = f / (f + r + e), r2c = (f + r) / (f + r + e).
- ``r2m_nakagawa``/``r2c_nakagawa``: the standard Nakagawa-Schielzeth definition, with the variance of the
  fixed-effect prediction X*beta and the model's residual variance (its scale).
In the crossed model the random variance is the sum of the participant and story variances.
The study's pair uses sample variances (ddof = 1: pandas ``.var()``, as the study's code did; with population
variances novelty's R^2c would be .3857, not the printed .3849); Nakagawa's uses the population variance of X*beta."""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np
import polars as pl

from tempcreativity.catalogue import CRITERIA

RATING_ITEMS = tuple(CRITERIA)  # the rating columns: one per criterion, named after it
REQUIRED_COLUMNS = ("story_id", "temperature", "participant_id", *RATING_ITEMS)
SCORE_PREDICTORS = ("perplexity", "cosine_similarity", "edit_distance")
RATING_MIN, RATING_MAX = 1.0, 5.0
# The crossed model's and the ICC's bound (variance_components.MAX_DENSE_LEVELS): its smaller factor, stories or
# participants, may have at most this many levels. The participant-only model and least squares have no bound.
MAX_CROSSED_LEVELS = 4000
# Cronbach's alpha compares every two stories rated by a common participant: at most this many such pairs (the
# sum over participants of the squared number of stories each rated), about 1.5 GB at the peak.
MAX_CRONBACH_PAIRS = 20_000_000


class RatingsError(ValueError):
    """A ratings file the analysis cannot use; the message names the columns or rows."""


def load_ratings(path: str | Path, min_participants: int = 2) -> pl.DataFrame:
    """Read a ratings CSV (one row per rating; an unnamed leading index column, as released, is dropped) and
    check it: the required columns present, ratings numbers in [1, 5], temperatures in [0, 2], nothing missing,
    each participant rating each story at most once, at least two participants."""
    path = Path(path)
    if path.is_dir():
        raise RatingsError(f"ratings: {path} is a folder, not a ratings file; needed: a CSV file of ratings")
    if not path.is_file():
        raise RatingsError(f"ratings: {path} does not exist; needed: a CSV file of ratings")
    with path.open("rb") as handle:
        head = handle.read(8192)
    if b"\0" in head:
        raise RatingsError(f"ratings: {path} is not a text file (it holds NUL bytes); expected a comma-separated CSV")
    lines = head.decode("utf-8", errors="replace").lstrip("\ufeff").splitlines()
    if lines and ";" in lines[0] and "," not in lines[0]:  # before the parser, whose message for it is about fields
        decimal_commas = any(re.search(r"\d,\d", line) for line in lines[1:])
        raise RatingsError(
            f"ratings: {path} seems to be separated by ';' (its header is {lines[0][:200]!r})"
            f"{', with decimal commas' if decimal_commas else ''}; the ratings file must be comma-separated"
            f"{' with decimal points (1.5, not 1,5)' if decimal_commas else ''}: export it again as CSV with ',' "
            "between fields"
        )
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
    return validate_ratings(frame, min_participants)


def load_scores(path: str | Path) -> pl.DataFrame:
    """The pipeline's scores.parquet, for the ratings command's ``--scores``; RatingsError naming the path when it
    is not one."""
    path, needed = Path(path), "needed: the pipeline's scores.parquet (results/<experiment>/scores.parquet)"
    if path.is_dir():
        raise RatingsError(f"--scores: {path} is a folder, not a scores file; {needed}")
    if not path.is_file():
        raise RatingsError(f"--scores: {path} does not exist; {needed}")
    try:
        scores = pl.read_parquet(path)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # polars' errors, and pyo3's PanicException for a damaged file
        raise RatingsError(
            f"--scores: {path} is not a readable Parquet file ({type(error).__name__}); {needed}"
        ) from None
    if "story_id" not in scores.columns:
        raise RatingsError(f"--scores: {path} has no story_id column (found {', '.join(scores.columns[:8])}); {needed}")
    return scores


def validate_ratings(frame: pl.DataFrame, min_participants: int = 2) -> pl.DataFrame:
    missing = [name for name in REQUIRED_COLUMNS if name not in frame.columns]
    if missing:
        near = [
            f"{found!r} would be {name} once stripped and lower-cased"
            for name in missing
            for found in frame.columns
            if found.strip().lower() == name
        ]
        raise RatingsError(
            f"ratings: missing column(s) {', '.join(missing)}; required: {', '.join(REQUIRED_COLUMNS)}; found: "
            f"{', '.join(repr(name) for name in frame.columns[:20])}{' ...' if len(frame.columns) > 20 else ''}"
            + (f" ({'; '.join(near)}: rename the header{'s' if len(near) > 1 else ''})" if near else "")
        )
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
    if frame["participant_id"].n_unique() < min_participants:
        raise RatingsError(
            "ratings: the mixed models need ratings from at least 2 participants (random intercept per participant); "
            f"found {frame['participant_id'].n_unique()}"
        )
    return frame


def _rows(indices: list[int]) -> str:
    shown = ", ".join(str(index + 1) for index in indices[:10])
    return shown + (f" and {len(indices) - 10} more" if len(indices) > 10 else "")


def cronbach_alpha(ratings: pl.DataFrame, item: str) -> float:
    """Cronbach's alpha of one rating item: stories as the scale's items, participants as subjects, each pair of
    stories' covariance over the participants who rated both (pingouin's ``nan_policy="pairwise"``, which the
    study used: k / (k - 1) * (1 - trace(C) / sum(C)), a covariance from fewer than two common participants left out
    of the sum, and nan when a story was rated only once). Computed from sparse cross-products of the long table,
    not a participants x stories table; RatingsError beyond MAX_CRONBACH_PAIRS pairs of stories rated together."""
    import pandas as pd
    from scipy import sparse

    participant, story = (pd.factorize(ratings[name].to_numpy())[0] for name in ("participant_id", "story_id"))
    subjects, stories = int(participant.max()) + 1, int(story.max()) + 1
    if subjects < 2 or stories < 2:  # one rater (the judge), or one story: no scale to be consistent over
        return math.nan
    pairs = int((np.bincount(participant).astype(np.int64) ** 2).sum())
    if pairs > MAX_CRONBACH_PAIRS:
        raise RatingsError(
            f"ratings: Cronbach's alpha compares every two stories a participant rated together: {pairs:,} such "
            f"pairs here; allowed: at most {MAX_CRONBACH_PAIRS:,} (participants rating fewer stories each)"
        )
    values = ratings[item].cast(pl.Float64).to_numpy()
    values = values - values.min() + 1.0  # (covariances do not change; no rating is 0, so no product vanishes)

    def matrix(data: np.ndarray):
        return sparse.csr_matrix((data, (participant, story)), shape=(subjects, stories))

    rated, scores = matrix(np.ones_like(values)), matrix(values)
    common = [(left.T @ right).tocsr() for left, right in ((rated, rated), (scores, scores), (scores, rated))]
    for product in common:
        product.sort_indices()
    count, products, sums = common
    sums_other = sums.T.tocsr()  # [a, b]: the sum of story b's ratings by those who rated a and b
    sums_other.sort_indices()
    if not all(
        np.array_equal(count.indices, m.indices) and np.array_equal(count.indptr, m.indptr)
        for m in (products, sums, sums_other)
    ):
        raise AssertionError("Cronbach's alpha: the cross-products do not share their pattern")
    n = count.data
    with np.errstate(all="ignore"):
        covariance = (products.data - sums.data * sums_other.data / n) / (n - 1)
    defined = n >= 2
    rows = np.repeat(np.arange(stories), np.diff(count.indptr))
    diagonal = rows == count.indices
    if not defined[diagonal].all():  # a story rated once has no variance: pingouin's trace is then nan
        return math.nan
    trace, total = covariance[diagonal].sum(), covariance[defined].sum()
    with np.errstate(all="ignore"):  # (totals without variance: -inf, as pingouin gives)
        return float(stories / (stories - 1) * (1.0 - trace / total))


def interval_alpha(reliability: np.ndarray) -> float:
    """Krippendorff's alpha, interval metric, of a raters x units matrix (nan = not rated): nan when no unit has
    two ratings or no rating differs from another."""
    import krippendorff

    reliability = np.asarray(reliability, dtype=float)
    if np.isfinite(reliability).sum(axis=0).max() < 2 or np.nanstd(reliability) == 0:
        return math.nan
    return float(krippendorff.alpha(reliability_data=reliability, level_of_measurement="interval"))


def krippendorff_alpha(ratings: pl.DataFrame, item: str) -> float:
    """Krippendorff's alpha of one rating item, interval metric, over raters x stories with missing cells: nan when
    no story has two ratings or no pairable rating differs from another. In closed form from the long table (the
    ``krippendorff`` package's value, which a test checks): with the m_u ratings of each story rated at least twice,
    1 - (N - 1) sum_u [2 (m_u sum v^2 - (sum v)^2) / (m_u - 1)] / (2 (N sum v^2 - (sum v)^2)) over their N ratings."""
    per_story = (
        ratings.group_by("story_id")
        .agg(m=pl.len(), s1=pl.col(item).cast(pl.Float64).sum(), s2=(pl.col(item).cast(pl.Float64) ** 2).sum())
        .filter(pl.col("m") >= 2)
    )
    if per_story.height == 0:
        return math.nan
    m, s1, s2 = (per_story[name].to_numpy().astype(float) for name in ("m", "s1", "s2"))
    observed = (2.0 * (m * s2 - s1**2) / (m - 1)).sum()
    total = m.sum()
    expected = 2.0 * (total * s2.sum() - s1.sum() ** 2)
    if expected <= 1e-12 * max(1.0, total * s2.sum()):
        return math.nan
    return float(1.0 - (total - 1) * observed / expected)


def single_rating_icc(ratings: pl.DataFrame, item: str) -> float:
    """ICC of a single rating, absolute agreement (ICC(2,1) for an incomplete crossed design): the story variance
    over story + participant + residual variance of ``rating ~ 1 + (1 | participant) + (1 | story)`` (REML);
    nan when no story was rated twice."""
    if not _stories_rated_more_than_once(ratings) or ratings[item].n_unique() < 2:
        return math.nan
    fitted = _fit(ratings.select("participant_id", "story_id", item).to_pandas(), f"{item} ~ 1", "crossed")
    variances = _variance_components(fitted)
    return variances["story"] / (variances["story"] + variances["participant"] + float(fitted.scale))


def descriptives(ratings: pl.DataFrame) -> pl.DataFrame:
    """Table 1: item, mean, sd (sample), cronbach_alpha (the study's), krippendorff_alpha (interval) and icc (a
    single rating, absolute agreement); then a ``mean`` row averaging each column."""
    rows = [
        {
            "item": item,
            "mean": ratings[item].mean(),
            "sd": ratings[item].std(ddof=1),
            "cronbach_alpha": cronbach_alpha(ratings, item),
            "krippendorff_alpha": krippendorff_alpha(ratings, item),
            "icc": single_rating_icc(ratings, item),
        }
        for item in RATING_ITEMS
    ]
    table = pl.DataFrame(rows)
    return pl.concat([table, table.select(pl.lit("mean").alias("item"), pl.exclude("item").mean())])


NOT_ESTIMABLE = dict.fromkeys(("beta", "se", "p", "r2c", "r2m", "r2c_nakagawa", "r2m_nakagawa"), math.nan)


RANDOM_EFFECTS = ("participant", "crossed", "both")


def _stories_rated_more_than_once(ratings: pl.DataFrame) -> bool:
    return ratings.group_by("story_id").len()["len"].max() > 1


def resolve_random_effects(ratings: pl.DataFrame, random_effects: str | None) -> list[str]:
    """The models to fit: ``both`` (participant-only and crossed) by default where stories were rated more than
    once, else ``participant``; ``none`` (ordinary least squares on stories) when one rater gave every rating.
    An explicit ``crossed`` or ``both`` needs stories rated more than once."""
    if ratings["participant_id"].n_unique() == 1:
        return ["none"]
    repeated = _stories_rated_more_than_once(ratings)
    if random_effects is None:
        random_effects = "both" if repeated else "participant"
    if random_effects not in RANDOM_EFFECTS:
        raise RatingsError(
            f"ratings.random_effects: {random_effects!r} is not allowed; allowed values: {', '.join(RANDOM_EFFECTS)}"
        )
    if random_effects != "participant" and not repeated:
        raise RatingsError(
            f"ratings.random_effects: {random_effects!r} needs stories rated by more than one "
            "participant (a random intercept per story); every story here was rated once: use participant"
        )
    return ["participant", "crossed"] if random_effects == "both" else [random_effects]


def _fit(data, formula: str, random_effects: str):
    """``formula`` (``rating ~ predictor`` or ``rating ~ 1``) fitted on ``data`` (pandas): ordinary least squares
    (statsmodels) for ``none``; REML with a random intercept per participant, or crossed ones per participant and
    per story (variance_components: statsmodels' estimates, without its dense matrices)."""
    from tempcreativity.variance_components import DesignTooLarge, fit_random_intercepts

    response, predictor = (part.strip() for part in formula.split("~"))
    if random_effects == "none":
        import statsmodels.formula.api as smf

        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return smf.ols(formula, data).fit()
    names = ["Intercept"] + ([] if predictor == "1" else [predictor])
    exog = np.ones((len(data), len(names)))
    if predictor != "1":
        exog[:, 1] = data[predictor].to_numpy(dtype=float)
    factors = {"participant": data["participant_id"].to_numpy()}
    if random_effects == "crossed":
        factors["story"] = data["story_id"].to_numpy()
    try:
        return fit_random_intercepts(data[response].to_numpy(dtype=float), exog, names, factors)
    except DesignTooLarge as error:
        raise RatingsError(
            f"ratings: {error}; allowed: at most {MAX_CROSSED_LEVELS:,} stories (or participants) "
            "for the crossed model and the ICC, or --random-effects participant"
        ) from None


def _variance_components(fitted) -> dict[str, float]:
    """The random-intercept variances of a fitted model by name (participant, story); none for least squares."""
    return dict(getattr(fitted, "variances", {}))


def fit_mixed_model(data, rating: str, predictor: str, random_effects: str = "participant") -> dict[str, float]:
    """``rating ~ predictor`` with the random intercepts of ``random_effects``; beta, SE, p and both R^2 pairs.
    All nan when the rating or the predictor does not vary (a judge that always answers the same, say)."""
    if data[rating].nunique() < 2 or data[predictor].nunique() < 2:
        return dict(NOT_ESTIMABLE)
    fitted = _fit(data, f"{rating} ~ {predictor}", random_effects)
    return _mixed_model_summary(fitted, predictor)


def _mixed_model_summary(fitted, predictor: str) -> dict[str, float]:
    random_variance = sum(_variance_components(fitted).values())
    if hasattr(fitted, "fixed_prediction"):  # a random-intercept model
        fixed_prediction, fitted_values = fitted.fixed_prediction, fitted.fittedvalues
        beta, se, p = fitted.fe_params[predictor], fitted.bse_fe[predictor], fitted.pvalues[predictor]
    else:  # ordinary least squares
        fixed_prediction = fitted_values = np.asarray(fitted.fittedvalues)
        beta, se, p = fitted.params[predictor], fitted.bse[predictor], fitted.pvalues[predictor]
    endog = np.asarray(fitted.endog if hasattr(fitted, "fixed_prediction") else fitted.model.endog)
    residual = float(np.var(endog - fitted_values, ddof=1))  # pandas .var(), as the study's code
    fitted_variance = float(np.var(fitted_values, ddof=1))
    study_total = fitted_variance + random_variance + residual
    fixed_variance = float(np.var(fixed_prediction))
    nakagawa_total = fixed_variance + random_variance + float(fitted.scale)
    return {
        "beta": float(beta),
        "se": float(se),
        "p": float(p),
        "r2c": (fitted_variance + random_variance) / study_total,
        "r2m": fitted_variance / study_total,
        "r2c_nakagawa": (fixed_variance + random_variance) / nakagawa_total,
        "r2m_nakagawa": fixed_variance / nakagawa_total,
    }


def mixed_models(
    ratings: pl.DataFrame, scores: pl.DataFrame | None = None, random_effects: str | None = None
) -> pl.DataFrame:
    """Table 2: one row per model x rating x predictor (``random_effects`` names the model: see
    ``resolve_random_effects``). Predictors: temperature always; perplexity, cosine similarity and edit distance
    to the exemplar when ``scores`` (joined on story_id) has them for the rated stories."""
    models = resolve_random_effects(ratings, random_effects)
    data = ratings
    predictors = ["temperature"]
    if scores is not None:
        available = [name for name in SCORE_PREDICTORS if name in scores.columns]
        data = ratings.join(scores.select("story_id", *available), on="story_id", how="left")
        predictors += [name for name in available if data[name].is_not_null().all() and data[name].is_not_nan().all()]
    frame = data.to_pandas()
    rows = []
    for model in models:
        for rating in RATING_ITEMS:
            for predictor in predictors:
                fit = fit_mixed_model(frame, rating, predictor, model)
                rows.append(
                    {
                        "random_effects": model,
                        "rating": rating,
                        "predictor": predictor,
                        **fit,
                        "n_obs": len(frame),
                        "n_groups": frame["participant_id"].nunique(),
                        "n_stories": frame["story_id"].nunique(),
                    }
                )
    return pl.DataFrame(rows)


def ratings_tables(
    ratings: pl.DataFrame, scores: pl.DataFrame | None = None, random_effects: str | None = None
) -> dict[str, str]:
    """Table 1 and Table 2 as CSV texts, ``descriptives`` and ``lme``, both computed before the caller writes
    either (so a failure leaves earlier tables as they were)."""
    return {
        "descriptives": descriptives(ratings).write_csv(float_precision=6),
        "lme": mixed_models(ratings, scores, random_effects).write_csv(float_precision=6),
    }


def write_tables(
    ratings: pl.DataFrame, out_dir: str | Path, scores: pl.DataFrame | None = None, random_effects: str | None = None
) -> dict[str, Path]:
    """The standalone command's form: ratings_descriptives.csv and ratings_lme.csv written into ``out_dir`` as a
    set (atomically); their paths."""
    from tempcreativity.io import write_texts_atomic

    paths = {name: Path(out_dir) / f"ratings_{name}.csv" for name in ("descriptives", "lme")}
    tables = ratings_tables(ratings, scores, random_effects)
    write_texts_atomic({paths[name]: text for name, text in tables.items()})
    return paths


def beta_interval(row: dict[str, float], z: float = 1.959963984540054) -> tuple[float, float]:
    """The 95% Wald interval of a beta."""
    if math.isnan(row["se"]):
        return math.nan, math.nan
    return row["beta"] - z * row["se"], row["beta"] + z * row["se"]
