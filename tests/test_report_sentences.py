"""The sentences the report writes from the numbers, on hand-made rows and tables shaped as their callers pass them:
each threshold just below and just above, each direction, the case with no evidence, several models, missing
values. Each test asserts the sentence, so that a moved threshold or a flipped direction fails."""

from __future__ import annotations

import math

import polars as pl
import pytest

from tempcreativity.frontier import frontier_sentences
from tempcreativity.judge_validation import verdict
from tempcreativity.report import (
    _p_value,
    design_text,
    model_comparison,
    rating_sentence,
    ratings_section,
    sampler_text,
    trend_group,
    trend_sentence,
)

NAN = math.nan
EDIT = "Edit distance to exemplar (characters)"


def trend_row(**changes) -> dict:
    """One row of statistics.trends as render_report passes it to trend_sentence (with ``several_models``)."""
    row = {
        "axis": "temperature",
        "model_id": "story-model",
        "within": "",
        "score": "edit_distance",
        "label": EDIT,
        "rho": 0.62,
        "p_value": 0.0004,
        "rho_ci_low": 0.41,
        "rho_ci_high": 0.78,
        "n": 60,
        "model": "ols",
        "response": "edit_distance",
        "slope": 0.2,
        "slope_se": 0.03,
        "slope_ci_low": 0.14,
        "slope_ci_high": 0.26,
        "slope_p": 1e-6,
        "resampled": "stories within cells",
        "several_models": False,
    }
    return row | changes


# trend_sentence ------------------------------------------------------------------------------------------------


def test_a_trend_sentence_states_direction_strength_ci_p_and_n():
    assert trend_sentence(trend_row()) == (
        f"{EDIT} strongly increases with temperature: Spearman ρ = 0.62, 95% CI [0.41, 0.78], p < 0.001, n = 60."
    )


def test_a_falling_score_decreases_with_temperature():
    row = trend_row(
        label="Cosine similarity to exemplar", rho=-0.35, rho_ci_low=-0.55, rho_ci_high=-0.12, p_value=0.006
    )
    assert trend_sentence(row) == (
        "Cosine similarity to exemplar moderately decreases with temperature: Spearman ρ = -0.35, "
        "95% CI [-0.55, -0.12], p = 0.006, n = 60."
    )


@pytest.mark.parametrize(
    ("rho", "strength"),
    [(0.29, "weakly"), (0.3, "moderately"), (0.49, "moderately"), (0.5, "strongly"), (0.95, "strongly")],
)
def test_the_strength_of_a_rise_turns_at_rho_0_3_and_0_5(rho, strength):
    row = trend_row(rho=rho, rho_ci_low=0.05, rho_ci_high=0.99)
    assert trend_sentence(row).startswith(f"{EDIT} {strength} increases with temperature: Spearman ρ = {rho:.2f},")


@pytest.mark.parametrize(("rho", "strength"), [(-0.29, "weakly"), (-0.3, "moderately"), (-0.5, "strongly")])
def test_the_strength_of_a_fall_turns_at_the_same_absolute_rho(rho, strength):
    row = trend_row(rho=rho, rho_ci_low=-0.99, rho_ci_high=-0.05)
    assert trend_sentence(row).startswith(f"{EDIT} {strength} decreases with temperature:")


@pytest.mark.parametrize(
    ("low", "high", "verdict_text"),
    [
        (0.001, 0.4, "weakly increases with temperature"),
        (0.0, 0.4, "shows no clear monotonic trend with temperature (the CI includes 0)"),
        (-0.001, 0.4, "shows no clear monotonic trend with temperature (the CI includes 0)"),
        (-0.4, 0.001, "shows no clear monotonic trend with temperature (the CI includes 0)"),
        (-0.4, 0.0, "shows no clear monotonic trend with temperature (the CI includes 0)"),
        (-0.4, -0.001, "weakly decreases with temperature"),
    ],
)
def test_the_direction_follows_the_ci_and_a_ci_touching_0_is_no_evidence(low, high, verdict_text):
    rho = 0.2 if low >= 0 else -0.2 if high <= 0 else 0.05
    sentence = trend_sentence(trend_row(rho=rho, rho_ci_low=low, rho_ci_high=high, p_value=0.3))
    assert sentence.startswith(
        f"{EDIT} {verdict_text}: Spearman ρ = {rho:.2f}, 95% CI [{low:.2f}, {high:.2f}], p = 0.300"
    )


def test_a_trend_that_could_not_be_estimated_says_so_with_its_n():
    row = trend_row(label="Perplexity", rho=NAN, p_value=NAN, rho_ci_low=NAN, rho_ci_high=NAN, n=2)
    assert trend_sentence(row) == (
        "Perplexity: no correlation with temperature could be estimated (constant values or too few stories, n = 2)."
    )


def test_a_missing_p_value_is_written_as_n_a():
    assert trend_sentence(trend_row(p_value=NAN)).endswith("95% CI [0.41, 0.78], p n/a, n = 60.")


def test_p_values_below_0_001_are_not_written_out():
    assert [_p_value(p) for p in (0.000999, 0.001, 0.0494, 0.05, NAN)] == [
        "p < 0.001",
        "p = 0.001",
        "p = 0.049",
        "p = 0.050",
        "p n/a",
    ]


def test_a_trend_with_a_swept_setting_names_its_axis_and_where_it_was_fitted():
    row = trend_row(
        axis="min_p",
        model_id="tiny",
        within="top-k 50, temperature 1",
        label="Distinct-2",
        rho=-0.12,
        rho_ci_low=-0.2,
        rho_ci_high=-0.03,
        p_value=0.01,
        n=400,
    )
    assert trend_sentence(row) == (
        "[top-k 50, temperature 1] Distinct-2 weakly decreases with min-p: Spearman ρ = -0.12, 95% CI [-0.20, -0.03], "
        "p = 0.010, n = 400."
    )


def test_the_model_is_named_only_when_the_grid_has_several():
    one, several = trend_row(model_id="tiny"), trend_row(model_id="tiny", several_models=True)
    assert trend_group(one) == "" and trend_sentence(one).startswith(EDIT)
    assert trend_group(several) == "tiny" and trend_sentence(several).startswith(f"[tiny] {EDIT} strongly increases")
    both = trend_row(model_id="tiny", several_models=True, within="min-p 0.1")
    assert trend_sentence(both).startswith(f"[tiny, min-p 0.1] {EDIT}")
    nothing = trend_row(rho=NAN, model_id="tiny", several_models=True, within="min-p 0.1")
    assert trend_sentence(nothing).startswith(
        "[tiny, min-p 0.1] Edit distance to exemplar (characters): no correlation"
    )


def test_a_trend_row_without_axis_or_within_reads_as_the_studys_temperature_trend():
    row = {key: value for key, value in trend_row().items() if key not in ("axis", "within", "several_models")}
    assert trend_sentence(row) == trend_sentence(trend_row())


# rating_sentence -----------------------------------------------------------------------------------------------


def lme_row(**changes) -> dict:
    """One row of ratings.mixed_models (Table 2), as ratings_section passes it to rating_sentence."""
    row = {
        "random_effects": "participant",
        "rating": "novelty",
        "predictor": "temperature",
        "beta": 0.2,
        "se": 0.05,
        "p": 0.00006,
        "r2c": 0.31,
        "r2m": 0.052,
        "r2c_nakagawa": 0.29,
        "r2m_nakagawa": 0.041,
        "n_obs": 180,
        "n_groups": 36,
        "n_stories": 31,
    }
    return row | changes


def test_a_rating_sentence_states_direction_beta_wald_ci_p_and_both_r2():
    assert rating_sentence(lme_row()) == (
        "Novelty ratings rise with temperature: β = 0.200, 95% CI [0.102, 0.298], p < 0.001; "
        "marginal R² = 0.041 (Nakagawa), 0.052 (as in the study)."
    )


def test_ratings_that_fall_with_a_score_say_so():
    row = lme_row(rating="typicality", predictor="cosine_similarity", beta=-1.5, se=0.5, p=0.0027)
    assert rating_sentence(row).startswith(
        "Typicality ratings fall with cosine similarity: β = -1.500, 95% CI [-2.480, -0.520], p = 0.003;"
    )


def test_the_studys_coherence_under_the_crossed_model_shows_no_clear_change():
    """The study's coherence with a random intercept per story: β .2298, SE .1337, p .086 (docs/statistics.md)."""
    row = lme_row(random_effects="crossed", rating="coherence", beta=0.2298, se=0.1337, p=0.086)
    assert rating_sentence(row).startswith(
        "Coherence ratings show no clear change with temperature: β = 0.230, 95% CI [-0.032, 0.492], p = 0.086;"
    )


@pytest.mark.parametrize(
    ("beta", "direction"),
    [(0.1961, "rise"), (0.1959, "show no clear change"), (-0.1959, "show no clear change"), (-0.1961, "fall")],
)
def test_the_direction_turns_where_the_95_percent_wald_interval_reaches_0(beta, direction):
    """With SE 0.1 the interval's bound crosses 0 at |β| = 1.96 SE = 0.196."""
    assert rating_sentence(lme_row(beta=beta, se=0.1, p=0.05)).startswith(
        f"Novelty ratings {direction} with temperature"
    )


def test_a_model_that_could_not_be_fitted_is_not_estimable():
    row = lme_row(
        rating="cohesion",
        predictor="edit_distance",
        **{key: NAN for key in ("beta", "se", "p", "r2c", "r2m", "r2c_nakagawa", "r2m_nakagawa")},
    )
    assert rating_sentence(row) == "Cohesion ~ edit distance: not estimable (the ratings or the predictor do not vary)."


def test_a_beta_without_standard_error_is_not_read_as_a_change():
    assert rating_sentence(lme_row(se=NAN, p=NAN)).startswith("Novelty ratings show no clear change with temperature:")


# model_comparison ----------------------------------------------------------------------------------------------


def comparison_table(rows: list[tuple[str, str, float, float, float]], extra_predictor: bool = True) -> pl.DataFrame:
    """Table 2 with both models: (random_effects, rating, beta, se, p) rows for temperature, and a perplexity row
    per model and rating that the comparison leaves out."""
    records = [
        lme_row(random_effects=model, rating=rating, beta=beta, se=se, p=p) for model, rating, beta, se, p in rows
    ]
    if extra_predictor:
        records += [
            lme_row(random_effects=model, rating=rating, predictor="perplexity", beta=0.01, se=0.02, p=0.617)
            for model, rating, *_ in rows
        ]
    return pl.DataFrame(records)


def test_the_comparison_says_where_the_story_effect_changes_the_conclusion():
    """The study's numbers: coherence p .049 with participants only, .086 with participant and story."""
    table = comparison_table(
        [
            ("participant", "novelty", 0.4012, 0.1771, 0.0235),
            ("participant", "coherence", 0.2298, 0.1168, 0.049),
            ("crossed", "novelty", 0.4102, 0.1832, 0.0251),
            ("crossed", "coherence", 0.2298, 0.1337, 0.086),
        ]
    )
    assert model_comparison(table) == [
        "Novelty: β = 0.401 (SE 0.177, p = 0.024) with a random intercept per participant; β = 0.410 (SE 0.183, "
        "p = 0.025) with participant and story; the conclusion at the 5% level is the same.",
        "Coherence: β = 0.230 (SE 0.117, p = 0.049) with a random intercept per participant; β = 0.230 (SE 0.134, "
        "p = 0.086) with participant and story; the conclusion at the 5% level changes.",
    ]


@pytest.mark.parametrize(
    ("alone", "crossed", "changes"),
    [(0.0499, 0.0501, True), (0.0501, 0.0499, True), (0.05, 0.06, False), (0.0499, 0.001, False), (0.04, 0.05, True)],
)
def test_the_conclusion_changes_when_one_p_is_below_0_05_and_the_other_is_not(alone, crossed, changes):
    table = comparison_table([("participant", "novelty", 0.3, 0.15, alone), ("crossed", "novelty", 0.3, 0.16, crossed)])
    (sentence,) = model_comparison(table)
    assert sentence.endswith("; the conclusion at the 5% level changes." if changes else "is the same.")


def test_a_rating_with_a_missing_p_is_left_out_of_the_comparison():
    table = comparison_table(
        [
            ("participant", "novelty", 0.3, 0.1, 0.003),
            ("participant", "cohesion", NAN, NAN, NAN),
            ("crossed", "novelty", 0.3, 0.2, 0.13),
            ("crossed", "cohesion", NAN, NAN, NAN),
        ]
    )
    (sentence,) = model_comparison(table)
    assert sentence.startswith("Novelty: ") and sentence.endswith("changes.")


@pytest.mark.parametrize("models", [["participant"], ["crossed"], ["none"]])
def test_with_one_model_there_is_nothing_to_compare(models):
    table = comparison_table([(model, "novelty", 0.3, 0.1, 0.003) for model in models])
    assert model_comparison(table) == []


# design_text ---------------------------------------------------------------------------------------------------


def trend_table(
    model: str = "ols", unit: str = "stories within cells", axes=("temperature",), models=("story-model",)
) -> pl.DataFrame:
    """A trends table (the columns design_text reads) with a row per model and axis."""
    return pl.DataFrame(
        [trend_row(axis=axis, model_id=model_id, model=model, resampled=unit) for model_id in models for axis in axes]
    ).drop("several_models")


def test_the_studys_design_is_independent_stories_and_least_squares():
    assert design_text({"seeding": "independent"}, trend_table()) == (
        "Seeding is <em>independent</em>: every story's vLLM seed is a hash of its prompt, its cell's sampling "
        "settings and its seed index, so every story is an independent draw, as in the study. Trend models: ordinary "
        "least squares (one prompt, independent stories); a random intercept per prompt where there are several "
        "prompts (prompts differ in level), and per seed under shared seeding (the paired unit). Perplexity's slope "
        "is fitted on log perplexity. Bootstrap CIs of Spearman's ρ resample stories within cells; with several "
        "prompts or shared seeds, ρ's p-value comes from a permutation test that shuffles temperatures within prompts "
        "(and seeds)."
    )


def test_shared_seeding_names_the_mixed_model_and_the_seeds_as_the_resampled_unit():
    table = trend_table("mixedlm: (1 | prompt) + (1 | seed)", "seeds (all stories of a seed)")
    text = design_text({"seeding": "shared"}, table)
    assert text.startswith("Seeding is <em>shared</em>: seed s draws the same random numbers at every temperature")
    assert "Trend models: mixedlm: (1 | prompt) + (1 | seed); a random intercept" in text
    assert "resample seeds (all stories of a seed);" in text and "The grid sweeps" not in text


def test_a_trend_table_without_a_resampled_column_resamples_stories():
    text = design_text({"seeding": "independent"}, trend_table().drop("resampled"))
    assert "Bootstrap CIs of Spearman's ρ resample stories; with several prompts" in text


def test_several_models_are_compared_within_each_model():
    text = design_text({"seeding": "independent"}, trend_table(models=("tiny", "small")))
    assert text.endswith(
        " The grid sweeps more than temperature: each trend is fitted within one model, so that no other setting "
        "confounds it. A trend is one association within one group: the groups' p-values are not corrected for "
        "multiple comparisons."
    )


def test_swept_settings_are_named_as_the_other_axes_of_trends():
    text = design_text({"seeding": "independent"}, trend_table(axes=("temperature", "top_k", "min_p")))
    assert text.endswith(
        " The grid sweeps more than temperature: each trend is fitted within one model and one level of every other "
        "swept setting (temperature included), so that no other setting confounds it; besides temperature, scores "
        "trend with top-k, min-p (top-k's 'all' is left out of its trend; truncation is a level, not an axis). A "
        "trend is one association within one group: the groups' p-values are not corrected for multiple comparisons."
    )


# sampler_text --------------------------------------------------------------------------------------------------


def test_the_sampler_names_each_fixed_value_and_the_values_a_setting_was_swept_over():
    stories = pl.DataFrame(
        {
            "top_k": [50, 50, 50],
            "top_p": [1.0, 1.0, 1.0],
            "min_p": [0.1, 0.0, 0.05],
            "repetition_penalty": [1.0] * 3,
            "truncation": ["raw", "scaled", "raw"],
        }
    )
    assert sampler_text(stories, {}) == "top-k 50, top-p 1, min-p swept over 0, 0.05, 0.1, repetition penalty 1"


def test_settings_missing_from_the_stories_come_from_the_config():
    stories = pl.DataFrame({"top_p": [0.9, 0.9]})
    decoding = {"top_k": -1, "top_p": 1.0, "min_p": 0.05, "repetition_penalty": 1.1}
    assert sampler_text(stories, {"decoding": decoding}) == "top-k -1, top-p 0.9, min-p 0.05, repetition penalty 1.1"


# ratings_section (who rated, in words) and the judge's verdict ---------------------------------------------------


def section(tmp_path, source: str, judge: dict | None = None, models=("participant", "crossed")) -> dict:
    forest = tmp_path / "forest.png"
    forest.write_bytes(b"png")
    descriptives = pl.DataFrame({"item": ["novelty", "mean"], "mean": [2.95, 3.1], "sd": [1.1, 1.0]})
    lme = comparison_table([(model, "novelty", 0.3, 0.1, 0.003) for model in models])
    return ratings_section(source, descriptives, lme, forest, "M", judge)


def test_peoples_ratings_are_said_to_be_peoples_with_both_models_compared(tmp_path):
    shown = section(tmp_path, "human")
    assert shown["who"] == "These ratings were given by people (the ratings file named in the config)."
    assert shown["models"] == [
        "rating ~ predictor + (1 | participant)",
        "rating ~ predictor + (1 | participant) + (1 | story)",
    ]
    assert shown["warning"] == "" and len(shown["comparison"]) == 1
    temperature = "Novelty ratings rise with temperature: β = 0.300, 95% CI [0.104, 0.496], p = 0.003;"
    perplexity = "Novelty ratings show no clear change with perplexity: β = 0.010, 95% CI [-0.029, 0.049], p = 0.617;"
    sentences = [row["sentence"] for row in shown["lme"]]
    assert [sentence.split(" marginal")[0] for sentence in sentences] == [temperature] * 2 + [perplexity] * 2
    assert shown["lme"][0]["beta"] == "0.3" and shown["descriptives"][0]["mean"] == "2.95"


@pytest.mark.parametrize(
    ("judge", "how"),
    [
        (
            {"method": "expected", "samples": 5, "temperature": 0.7, "is_generator": True},
            "the expected value of its answer distribution over 1-5 (greedy, one token, from its log-probabilities)",
        ),
        (
            {"method": "sample", "samples": 5, "temperature": 0.7, "is_generator": False},
            "the mean of 5 sampled answers at temperature 0.7",
        ),
    ],
)
def test_the_judges_ratings_say_how_they_were_made_and_warn_when_it_rates_its_own_stories(tmp_path, judge, how):
    shown = section(tmp_path, "judge", judge, models=("none",))
    assert shown["who"].startswith(
        "These ratings were produced by a language model (M), not by people: one rating per story and criterion, "
        f"{how}."
    )
    assert shown["warning"].startswith("The judge is the model that generated the stories") == judge["is_generator"]
    assert shown["models"] == ["rating ~ predictor (ordinary least squares over stories)"] and shown["comparison"] == []


def judge_table(rows: list[tuple[str, float, float, float]]) -> pl.DataFrame:
    """judge_vs_people's table: (criterion, rho, rho_ci_low, rho_ci_high) rows."""
    return pl.DataFrame(
        [
            {
                "criterion": criterion,
                "n": 31,
                "rho": rho,
                "rho_ci_low": low,
                "rho_ci_high": high,
                "p_value": 0.5,
                "krippendorff_alpha": 0.1,
                "judge_mean": 3.0,
                "people_mean": 2.9,
            }
            for criterion, rho, low, high in rows
        ]
    )


def test_the_verdict_groups_criteria_by_where_the_ci_of_rho_lies():
    table = judge_table(
        [
            ("novelty", 0.09, -0.33, 0.45),
            ("typicality", 0.41, 0.001, 0.68),
            ("cohesion", -0.38, -0.65, -0.001),
            ("coherence", 0.2, 0.0, 0.5),
        ]
    )
    assert verdict(table) == (
        "On the study's stories the judge ranks the stories as people do on typicality (ρ = 0.41); ranks them "
        "against people on cohesion (ρ = -0.38); shows no agreement distinguishable from none on novelty "
        "(ρ = 0.09), coherence (ρ = 0.20)."
    )


def test_a_verdict_with_one_group_and_a_judge_that_never_varies():
    agrees = judge_table([("novelty", 0.6, 0.3, 0.8), ("coherence", 0.5, 0.2, 0.7)])
    assert verdict(agrees) == (
        "On the study's stories the judge ranks the stories as people do on novelty (ρ = 0.60), coherence (ρ = 0.50)."
    )
    constant = judge_table([("novelty", NAN, NAN, NAN)])  # a judge that gives every story the same rating
    assert verdict(constant).startswith("On the study's stories the judge shows no agreement distinguishable from none")


# frontier_sentences --------------------------------------------------------------------------------------------


def frontier(cells: list[tuple[str, str, float, float, float]], measure: str = "perplexity") -> pl.DataFrame:
    """frontier_table's table: (model_id, sampler, temperature, diversity, quality) rows, sorted as it sorts them."""
    return pl.DataFrame(
        [
            {
                "model_id": model,
                "sampler": sampler,
                "temperature": temperature,
                "n": 10,
                "diversity": diversity,
                "diversity_ci_low": diversity - 0.01,
                "diversity_ci_high": diversity + 0.01,
                "quality": quality,
                "quality_ci_low": quality - 1,
                "quality_ci_high": quality + 1,
                "quality_measure": measure,
            }
            for model, sampler, temperature, diversity, quality in cells
        ]
    )


PERPLEXITY = "perplexity under the generating model"
TWO_SAMPLERS = [
    ("tiny", "min-p 0", 0.5, 0.10, 3.0),
    ("tiny", "min-p 0", 1.0, 0.20, 5.0),
    ("tiny", "min-p 0", 1.5, 0.40, 12.0),
    ("tiny", "min-p 0.1", 0.5, 0.08, 2.5),
    ("tiny", "min-p 0.1", 1.0, 0.15, 3.0),
    ("tiny", "min-p 0.1", 1.5, 0.25, 5.0),
]


def test_one_sampler_is_followed_from_its_lowest_to_its_highest_temperature():
    table = frontier(
        [("tiny", "temperature only", t, d, q) for t, d, q in ((0.5, 0.1, 3.0), (1.0, 0.2, 4.5), (1.5, 0.3, 9.0))]
    )
    assert frontier_sentences(table) == [
        f"From temperature 0.5 to 1.5, diversity goes from 0.1 to 0.3 and {PERPLEXITY} from 3 to 9."
    ]


def test_at_the_median_diversity_the_sampler_with_the_lowest_perplexity_is_named():
    """Median of the six cells' diversity: 0.175; min-p 0 is there at 3 + 2 * 0.75 = 4.5, min-p 0.1 at
    3 + 2 * 0.25 = 3.5."""
    assert frontier_sentences(frontier(TWO_SAMPLERS)) == [
        f"At a diversity of 0.175 (the median over its cells), min-p 0.1 reaches the lowest {PERPLEXITY}, 3.5 "
        "(others: min-p 0 4.5)."
    ]


def test_the_judges_coherence_is_lower_better_too():
    swapped = [
        (model, "min-p 0.1" if sampler == "min-p 0" else "min-p 0", t, d, q) for model, sampler, t, d, q in TWO_SAMPLERS
    ]
    (sentence,) = frontier_sentences(frontier(swapped, "judge_coherence"))
    assert sentence == (
        "At a diversity of 0.175 (the median over its cells), min-p 0 reaches the lowest coherence rating (LLM judge; "
        "1 = very easy to follow, 5 = very hard), 3.5 (others: min-p 0.1 4.5)."
    )


def test_a_sampler_that_never_reaches_the_median_diversity_is_named():
    """Nine cells, median 0.25: min-p 0.1 ends there (5), min-p 0 passes it at 5 + 7 * 0.25 = 6.75, min-p 0.2 starts
    above it."""
    cells = [*TWO_SAMPLERS, *(("tiny", "min-p 0.2", t, d, 1.0) for t, d in ((0.5, 0.5), (1.0, 0.6), (1.5, 0.7)))]
    assert frontier_sentences(frontier(cells)) == [
        f"At a diversity of 0.25 (the median over its cells), min-p 0.1 reaches the lowest {PERPLEXITY}, 5 (others: "
        "min-p 0 6.75). Not reaching that diversity at any of the temperatures: min-p 0.2."
    ]


def test_when_no_sampler_reaches_the_median_diversity_the_sentence_says_so():
    cells = [
        ("tiny", "min-p 0", 0.5, 0.1, 3.0),
        ("tiny", "min-p 0", 1.5, 0.2, 6.0),
        ("tiny", "min-p 0.1", 0.5, 0.3, 2.0),
        ("tiny", "min-p 0.1", 1.5, 0.4, 4.0),
    ]
    assert frontier_sentences(frontier(cells)) == ["No sampler's line reaches the median diversity 0.25."]


def test_a_cell_without_diversity_is_left_out_of_the_median():
    """One story in min-p 0's first cell: no diversity; the median of the other five cells is 0.2, which min-p 0
    reaches at its second cell (5) and min-p 0.1 halfway between its last two (4)."""
    cells = [("tiny", "min-p 0", 0.5, math.nan, 3.0), *TWO_SAMPLERS[1:]]
    assert frontier_sentences(frontier(cells)) == [
        f"At a diversity of 0.2 (the median over its cells), min-p 0.1 reaches the lowest {PERPLEXITY}, 4 (others: "
        "min-p 0 5)."
    ]


def test_at_one_temperature_the_samplers_are_listed_best_first():
    cells = [("tiny", "min-p 0", 1.0, 0.3, 8.0), ("tiny", "min-p 0.1", 1.0, 0.2, 5.0)]
    assert frontier_sentences(frontier(cells)) == [
        f"At the one temperature 1, diversity and {PERPLEXITY} per sampler, best {PERPLEXITY} first: min-p 0.1 0.2 "
        "and 5; min-p 0 0.3 and 8."
    ]


def test_with_several_models_each_sentence_starts_with_its_model_id_as_written():
    cells = [
        (model, "temperature only", t, d, q)
        for model in ("llama2-7b", "qwen2.5-32b")
        for t, d, q in ((0.5, 0.1, 3.0), (1.5, 0.3, 9.0))
    ]
    assert frontier_sentences(frontier(cells)) == [
        f"llama2-7b: from temperature 0.5 to 1.5, diversity goes from 0.1 to 0.3 and {PERPLEXITY} from 3 to 9.",
        f"qwen2.5-32b: from temperature 0.5 to 1.5, diversity goes from 0.1 to 0.3 and {PERPLEXITY} from 3 to 9.",
    ]


def test_an_empty_frontier_has_no_sentences():
    assert frontier_sentences(frontier([("tiny", "x", 1.0, 0.1, 1.0)]).clear()) == []
