"""Scoring real stories the project did not write: the study's rated Llama 2 stories and its exemplar
(resources/peeperkorn2024/, the study's released data, BSD 3-Clause)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from conftest import REPO
from tempcreativity.embedding import embed_stories, pool_windows, windows
from tempcreativity.peeperkorn import EXEMPLAR_ID, load_study_stories
from tempcreativity.scoring import score_stories

STUDY_DATA = REPO / "resources" / "peeperkorn2024"


def test_windows_cover_the_sequence():
    assert windows(list(range(10)), 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert windows([], 4) == [[]]


def test_window_pooling_is_length_weighted_and_normalised():
    pooled = pool_windows(np.array([[1.0, 0.0], [0.0, 1.0]]), [3, 1])
    assert pooled == pytest.approx(np.array([3.0, 1.0]) / np.sqrt(10))


@pytest.fixture(scope="module")
def study_scores(tmp_path_factory):
    stories = load_study_stories(STUDY_DATA)
    cache = tmp_path_factory.mktemp("embedding-cache")
    vectors, stats = embed_stories(stories["text"].to_list(), "minilm", {}, {"dtype": "bfloat16"}, cache)
    again, stats_again = embed_stories(stories["text"].to_list(), "minilm", {}, {"dtype": "bfloat16"}, cache)
    return stories, score_stories(stories, {"minilm": vectors}), (vectors, stats, again, stats_again)


def test_study_stories_load_as_a_generations_table(study_scores):
    stories, _, _ = study_scores
    assert stories.height == 32  # the exemplar and 31 rated stories
    assert stories.filter(pl.col("is_exemplar"))["story_id"].to_list() == [EXEMPLAR_ID]
    assert sorted(stories.filter(~pl.col("is_exemplar"))["temperature"].unique()) == [
        0.001,
        0.334,
        0.667,
        1.0,
        1.334,
        1.667,
        2.0,
    ]
    assert not stories["text"].str.contains("<br>").any()


def test_exemplar_scores_cosine_one_and_edit_distance_zero_against_itself(study_scores):
    _, scores, _ = study_scores
    exemplar = scores.filter(pl.col("is_exemplar")).row(0, named=True)
    assert exemplar["cosine_similarity"] == pytest.approx(1.0, abs=1e-6)
    assert exemplar["edit_distance"] == 0.0 and exemplar["edit_distance_words"] == 0.0
    assert exemplar["identical_to_exemplar"]


def test_the_near_greedy_story_is_the_closest_to_the_exemplar(study_scores):
    _, scores, _ = study_scores
    stories = scores.filter(~pl.col("is_exemplar"))
    closest = stories.sort("edit_distance").row(0, named=True)
    assert closest["temperature"] == 0.001
    hot, cold = stories.filter(pl.col("temperature") >= 1.667), stories.filter(pl.col("temperature") <= 0.334)
    assert hot["cosine_similarity"].mean() < cold["cosine_similarity"].mean()
    assert hot["distinct_2"].mean() > cold["distinct_2"].mean()


def test_long_stories_are_embedded_in_windows_once_and_then_read_from_the_cache(study_scores):
    stories, _, (vectors, stats, again, stats_again) = study_scores
    assert stats["embedded"] == stories.height and stats["multi_window"] > stories.height // 2
    assert stats_again["embedded"] == 0 and np.array_equal(vectors, again)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(np.ones(stories.height), abs=1e-5)


def test_scoring_needs_an_exemplar_per_prompt():
    stories = pl.DataFrame({"story_id": ["a"], "prompt_id": ["p"], "is_exemplar": [False], "text": ["x"]})
    with pytest.raises(ValueError, match="no exemplar for prompt"):
        score_stories(stories, {})


def test_share_below_raw_min_p_counts_the_tokens_the_study_would_have_removed():
    from tempcreativity.scoring import share_below_raw_min_p

    # ratios to the most likely token: 1, 0.1, 0.01 (removed), 0.04 (removed); the exemplar is not counted
    generations = pl.DataFrame(
        {
            "prompt_id": ["p", "p", "p"],
            "temperature": [0.0, 2.0, 2.0],
            "is_exemplar": [True, False, False],
            "logprobs": [[np.log(0.001)], [np.log(0.5), np.log(0.05)], [np.log(0.005), np.log(0.02)]],
            "top_logprobs": [[0.0], [np.log(0.5), np.log(0.5)], [np.log(0.5), np.log(0.5)]],
        }
    )
    share = share_below_raw_min_p(generations)
    assert share.rows() == [("p", 2.0, 4, 0.5)]
