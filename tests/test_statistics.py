"""Statistics on synthetic data: a planted effect is recovered, no effect gives a CI that covers 0."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from tempcreativity.scoring import SCORE_LABELS
from tempcreativity.statistics import (
    SpearmanDraws,
    _spearman_rows,
    bootstrap_mean_ci,
    design_units,
    linear_trend,
    pca_2d,
    spearman_with_ci,
    summarise,
    trends,
)

TEMPERATURES = np.repeat([0.25, 0.5, 1.0, 1.5, 2.0], 20)


def test_bootstrap_ci_covers_the_true_mean_and_is_reproducible():
    values = np.random.default_rng(1).normal(5.0, 1.0, 200)
    low, high = bootstrap_mean_ci(values, 2000)
    assert low < 5.0 < high and high - low < 0.4
    assert (low, high) == bootstrap_mean_ci(values, 2000)
    assert bootstrap_mean_ci(np.array([3.0, 3.0]), 2000) == (3.0, 3.0)
    assert all(math.isnan(bound) for bound in bootstrap_mean_ci(np.array([1.0]), 2000))


def test_planted_monotonic_effect_is_found():
    rng = np.random.default_rng(2)
    y = 3.0 * TEMPERATURES + rng.normal(0, 0.5, TEMPERATURES.size)
    result = spearman_with_ci(TEMPERATURES, y, 500)
    assert result["rho"] > 0.8 and result["rho_ci_low"] > 0.7 and result["p_value"] < 1e-10


def test_spearman_of_many_resamples_at_once_is_scipys_one_at_a_time():
    """The bootstrap computes rho for all its resamples at once; each must be scipy's, ties and constant rows too."""
    from scipy import stats

    rng = np.random.default_rng(5)
    x = np.repeat([0.5, 1.0, 1.5, 2.0], 10)
    y = np.round(x + rng.normal(0, 1, x.size), 1)  # rounded: ties in y as well as in x
    rows = np.vstack([rng.integers(0, x.size, x.size) for _ in range(200)] + [np.zeros(x.size, dtype=int)])
    together = _spearman_rows(x[rows], y[rows])
    one_at_a_time = [stats.spearmanr(x[row], y[row]).statistic for row in rows[:-1]]
    np.testing.assert_allclose(together[:-1], one_at_a_time, rtol=0, atol=1e-12)
    assert math.isnan(together[-1]), "a resample of one story repeated has no rho"


def test_no_effect_gives_a_ci_covering_zero():
    y = np.random.default_rng(3).normal(0, 1, TEMPERATURES.size)
    result = spearman_with_ci(TEMPERATURES, y, 500)
    assert result["rho_ci_low"] < 0 < result["rho_ci_high"] and result["p_value"] > 0.05


def synthetic_scores(slope: float, prompts: int, seed: int) -> pl.DataFrame:
    """Stories of several prompts, each with its own intercept, and a common slope on temperature."""
    rng = np.random.default_rng(seed)
    rows = []
    for prompt in range(prompts):
        intercept = rng.normal(0, 3)
        for temperature in TEMPERATURES:
            value = intercept + slope * temperature + rng.normal(0, 0.5)
            rows.append(
                {
                    "prompt_id": f"p{prompt}",
                    "temperature": float(temperature),
                    "is_exemplar": False,
                    **{score: value for score in SCORE_LABELS},
                }
            )
    return pl.DataFrame(rows)


def test_mixed_model_recovers_the_slope_across_prompts():
    scores = synthetic_scores(slope=-1.5, prompts=5, seed=4)
    fit = linear_trend(scores, "edit_distance")
    assert fit["model"] == "mixedlm: (1 | prompt)"
    assert fit["slope_ci_low"] < -1.5 < fit["slope_ci_high"] and fit["slope_p"] < 1e-6


def test_single_prompt_uses_ordinary_least_squares_and_no_effect_covers_zero():
    fit = linear_trend(synthetic_scores(slope=0.0, prompts=1, seed=5), "edit_distance")
    assert fit["model"] == "ols" and fit["slope_ci_low"] < 0 < fit["slope_ci_high"]


def test_trends_table_has_every_score():
    table = trends(synthetic_scores(slope=1.0, prompts=2, seed=6), 200)
    assert table["score"].to_list() == list(SCORE_LABELS)
    assert (table["rho"] > 0).all() and (table["slope_ci_low"] > 0).all()


def test_summary_per_prompt_and_temperature_with_diversity():
    scores = pl.DataFrame(
        {
            "story_id": ["e", "a", "b", "c", "d"],
            "prompt_id": ["p"] * 5,
            "temperature": [0.0, 1.0, 1.0, 2.0, 2.0],
            "is_exemplar": [True, False, False, False, False],
            "identical_to_exemplar": [True, True, False, False, False],
            **{score: [0.0, 1.0, 3.0, 5.0, 5.0] for score in SCORE_LABELS},
        }
    )
    texts = pl.Series(["x", "x", "y", "zz", "zz"])
    vectors = np.array([[1, 0], [1, 0], [0, 1], [1, 1], [1, 1]], dtype=np.float32)
    summary = summarise(scores, texts, vectors, 200)
    assert summary.select("temperature", "n").rows() == [(1.0, 2), (2.0, 2)]
    first, second = summary.row(0, named=True), summary.row(1, named=True)
    assert first["perplexity_mean"] == 2.0 and first["perplexity_median"] == 2.0
    assert first["diversity"] == pytest.approx(1.0) and second["diversity"] == pytest.approx(0.0, abs=1e-6)
    assert first["share_identical_to_exemplar"] == 0.5 and second["share_duplicates"] == 0.5
    assert second["self_similarity"] == 1.0 and second["perplexity_ci_low"] == second["perplexity_ci_high"] == 5.0


def test_pca_is_fitted_on_stories_and_exemplars():
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(30, 8))
    vectors[:, 0] *= 10  # one dominant direction
    scores = pl.DataFrame(
        {
            "story_id": [str(i) for i in range(30)],
            "prompt_id": ["p"] * 30,
            "temperature": [1.0] * 30,
            "is_exemplar": [i == 0 for i in range(30)],
        }
    )
    pca = pca_2d(scores, vectors)
    assert pca.height == 30 and pca["pc1_variance"][0] > 0.5
    assert abs(np.corrcoef(pca["pc1"], vectors[:, 0])[0, 1]) > 0.99


def paired_scores(seeds: int, seed: int) -> pl.DataFrame:
    """One prompt, shared seeds: each seed has its own slope on temperature (the paired unit), no common slope."""
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(seeds):
        own_slope = rng.normal(0, 1)
        for temperature in np.unique(TEMPERATURES):
            value = own_slope * temperature + rng.normal(0, 0.05)
            rows.append(
                {
                    "story_id": f"T{temperature}:s{index}",
                    "prompt_id": "p",
                    "temperature": float(temperature),
                    "seed": index,
                    "is_exemplar": False,
                    **{score: float(np.exp(value)) for score in SCORE_LABELS},
                }
            )
    return pl.DataFrame(rows)


def test_shared_seeds_are_resampled_and_modelled_as_the_paired_unit():
    scores = paired_scores(seeds=8, seed=11)
    stories = scores.filter(~pl.col("is_exemplar"))
    shared, independent = design_units(stories, "shared"), design_units(stories, "independent")
    assert shared["random_effects"] == ["seed"] and independent["random_effects"] == []
    temperature, values = stories["temperature"].to_numpy(), stories["edit_distance"].to_numpy()
    clustered = spearman_with_ci(temperature, values, 400, units=shared)
    naive = spearman_with_ci(temperature, values, 400)
    # eight seeds with their own slopes are eight pieces of evidence, not eight times the temperatures
    width = lambda result: result["rho_ci_high"] - result["rho_ci_low"]  # noqa: E731
    assert width(clustered) > 1.5 * width(naive)
    assert linear_trend(stories, "edit_distance", ["seed"])["model"] == "mixedlm: (1 | seed)"


def test_several_prompts_under_shared_seeds_get_crossed_random_intercepts():
    scores = pl.concat([paired_scores(4, 1), paired_scores(4, 2).with_columns(prompt_id=pl.lit("q"))])
    table = trends(scores, 100, "shared")
    assert set(table["model"]) == {"mixedlm: (1 | prompt) + (1 | seed)"}
    assert set(table["resampled"]) == {"seeds (all stories of a seed)"}


def test_draws_shared_by_a_groups_scores_give_exactly_what_each_call_computes_alone():
    """trends reuses one group's resamples and permutations for every score: the same numbers, to the bit, as
    spearman_with_ci without them, for clusters of unequal size, several strata and blocks, and a score with a NaN
    (its own kept stories, its own draws)."""
    rng = np.random.default_rng(8)
    x = np.repeat([0.5, 1.0, 1.5, 2.0], 15)
    units = {
        "clusters": rng.integers(0, 12, x.size).astype(str),  # seeds of unequal size
        "strata": np.tile(["p", "q"], x.size // 2),
        "blocks": np.tile(["p|a", "p|b", "q|a"], x.size // 3),
    }
    ys = [np.round(slope * x + rng.normal(0, 1, x.size), 1) for slope in (0.0, 0.5, 2.0)]
    ys.append(ys[1].copy())
    ys[-1][[3, 40]] = np.nan
    draws = SpearmanDraws(units)
    for y in [*ys, ys[-1], ys[0]]:  # each draw is made once and reused, whatever the order
        alone = spearman_with_ci(x, y, 300, units=units)
        shared = spearman_with_ci(x, y, 300, units=units, draws=draws)
        assert shared == alone and all(math.isfinite(value) for value in alone.values())
    assert spearman_with_ci(x, ys[-1], 300, units=units)["n"] == x.size - 2
    with pytest.raises(ValueError, match="other units"):
        spearman_with_ci(x, ys[0], 300, units=dict(units), draws=draws)


def test_perplexity_trend_is_fitted_on_its_logarithm():
    scores = synthetic_scores(slope=0.0, prompts=1, seed=7).with_columns(perplexity=pl.col("temperature").exp() * 3)
    fit = linear_trend(scores, "perplexity")
    assert fit["response"] == "log perplexity" and fit["slope"] == pytest.approx(1.0)


def swept_scores(seed: int = 11) -> pl.DataFrame:
    """Two models x min-p 0 / 0.1 x three temperatures x 12 stories: the score rises with temperature by 2 per
    unit and falls with min-p by 10 per unit, in both models (model b is 5 higher)."""
    rng = np.random.default_rng(seed)
    rows = []
    for model, offset in (("a", 0.0), ("b", 5.0)):
        for min_p in (0.0, 0.1):
            for temperature in (0.5, 1.0, 1.5):
                for story in range(12):
                    value = offset + 2.0 * temperature - 10.0 * min_p + rng.normal(0, 0.2)
                    rows.append(
                        {
                            "story_id": f"{model}:{min_p}:{temperature}:{story}",
                            "model_id": model,
                            "prompt_id": "p",
                            "top_p": 1.0,
                            "min_p": min_p,
                            "temperature": temperature,
                            "seed": story,
                            "is_exemplar": False,
                            "identical_to_exemplar": False,
                            **{score: value for score in SCORE_LABELS},
                        }
                    )
    return pl.DataFrame(rows)


def test_trends_per_swept_axis_within_the_other_axes_levels():
    table = trends(swept_scores(), 100)
    perplexity = table.filter(pl.col("score") == "edit_distance")
    groups = perplexity.select("axis", "model_id", "within").rows()
    assert sorted(groups) == sorted(
        [("temperature", model, f"min-p {m}") for model in "ab" for m in ("0", "0.1")]
        + [("min_p", model, f"temperature {t}") for model in "ab" for t in ("0.5", "1", "1.5")]
    )  # top_p does not vary: no axis; the model is a level, never pooled
    by_axis = {axis: rows for axis, rows in perplexity.group_by("axis")}
    assert (by_axis[("temperature",)]["slope_ci_low"] < 2.0).all() and (
        by_axis[("temperature",)]["slope_ci_high"] > 2.0
    ).all()
    assert (by_axis[("min_p",)]["slope_ci_low"] < -10.0).all() and (by_axis[("min_p",)]["slope_ci_high"] > -10.0).all()
    assert (by_axis[("min_p",)]["rho"] < -0.8).all() and (by_axis[("temperature",)]["rho"] > 0.8).all()


def test_summary_has_one_row_per_cell_with_a_diversity_interval():
    scores = swept_scores()
    vectors = np.random.default_rng(0).normal(size=(scores.height, 4))
    summary = summarise(scores, pl.Series(["x"] * scores.height), vectors, 100)
    assert summary.height == 2 * 2 * 3 and summary.columns[:5] == ["model_id", "prompt_id", "min_p", "temperature", "n"]
    assert (summary["n"] == 12).all()
    assert (
        (summary["diversity_ci_low"] <= summary["diversity"]) & (summary["diversity"] <= summary["diversity_ci_high"])
    ).all()
    assert summary["diversity"][0] == pytest.approx(metrics_distance(vectors[:12]))


def metrics_distance(vectors: np.ndarray) -> float:
    """Mean pairwise cosine distance by hand, over the distinct pairs."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    pairs = [(i, j) for i in range(len(unit)) for j in range(i + 1, len(unit))]
    return float(np.mean([1 - unit[i] @ unit[j] for i, j in pairs]))


def test_a_story_with_no_text_is_kept_but_each_cells_scores_are_over_its_scored_stories(tmp_path, monkeypatch):
    """`stop: ["a"]` can end a story before its first token: its perplexity is nan, and its cell used to report
    n = 3 with a perplexity mean over 2, silently. Now the cell has n = 3 and n_scored = 2, every score's mean is
    over the 2 scored stories, and the report says how many stories ended with no text."""
    import base64

    from conftest import SCHEMA
    from tempcreativity.config import validate_config
    from tempcreativity.report import render_report
    from tempcreativity.scoring import score_stories

    rng = np.random.default_rng(0)

    def story(temperature, seed, text):
        count = len(text.split()) + 1 if text else 0
        logprobs = np.log(rng.uniform(0.1, 1.0, count)).tolist()
        return {
            "story_id": f"{temperature}-{seed}",
            "model_id": "m",
            "prompt_id": "story",
            "temperature": temperature if seed is not None else 0.0,
            "seed": seed,
            "is_exemplar": seed is None,
            "sampling_seed": 1,
            "top_k": 50,
            "top_p": 1.0,
            "min_p": 0.0,
            "repetition_penalty": 1.0,
            "truncation": "scaled",
            "text": text,
            "token_ids": list(range(count)),
            "logprobs": logprobs,
            "top_logprobs": logprobs,
            "num_tokens": count,
            "finish_reason": "stop" if not text else "length",
        }

    texts = {0.5: ["", "The cat sat.", "The dog sat down."], 1.0: ["Dreams of rain.", "Xylophones.", "Be quiet now."]}
    generations = pl.DataFrame(
        [story(0.0, None, "The exemplar story.")]
        + [story(t, seed, text) for t, cell in texts.items() for seed, text in enumerate(cell)]
    )
    vectors = rng.normal(size=(generations.height, 4))
    scores = score_stories(generations, {"minilm": vectors})
    summary = summarise(scores, generations["text"], vectors, 100)
    assert summary.select("temperature", "n", "n_scored").rows() == [(0.5, 3, 2), (1.0, 3, 3)]
    hot = summary.row(0, named=True)
    scored = scores.filter((pl.col("temperature") == 0.5) & (pl.col("num_tokens") > 0))
    for score in ("perplexity", "edit_distance", "cosine_similarity", "num_words", "compression_ratio"):
        assert hot[f"{score}_mean"] == pytest.approx(scored[score].mean()), score  # over the 2 scored stories
    assert hot["edit_distance_mean"] < 1.0  # (the empty story's distance, 1.0, is left out)
    png = tmp_path / "figure.png"
    png.write_bytes(
        base64.b64decode(
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
        )
    )
    config = validate_config(
        {
            "experiment": "x",
            "model": {"path": "embedded"},
            "temperatures": [0.5, 1.0],
            "seeds": 3,
            "decoding": {"stop": ["a"], "max_tokens": 16},
        },
        SCHEMA,
    )

    def render() -> str:
        return render_report(
            config=config,
            manifest={"model": "M", "sha256": "abc", "folder": "/m", "config_path": "embedded"},
            generations=generations,
            scores=scores,
            summary=summary,
            trend_table=trends(scores, 100),
            figures={name: png for name in ("boxplots", "pca", "diversity", "trends")},
            files={},
            provenance={"git": {"commit": "abc", "dirty": False}, "packages": {}},
        )

    html = render()
    assert "<strong>1 story ended with no text</strong>" in html and "1 of them with no text at all" in html
    assert '<td class="num">3 (2 scored)</td>' in html and '<td class="num">3</td>' in html

    # a sweep's long tables are folded under a line that names them, every row still there (here 10 trend rows
    # against a threshold of 5; the 2 cells stay open)
    from tempcreativity import report

    assert "<details>" not in html
    monkeypatch.setattr(report, "TABLE_ROWS_SHOWN", 5)
    folded = render()
    assert "<details><summary>The 10 trends (every measure, axis and group)" in folded
    assert folded.count("<details>") == 1 and folded.count("</details>") == 1
    assert folded.replace("<details><summary>", "").count("<tr>") == html.count("<tr>")
