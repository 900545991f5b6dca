"""The diversity/quality frontier: per sampler and temperature, from hand-checkable data."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from tempcreativity.frontier import frontier_sentences, frontier_table, quality_at
from tempcreativity.scoring import SCORE_LABELS


def cell_scores() -> tuple[pl.DataFrame, np.ndarray]:
    """One model, min-p 0 and 0.1, two temperatures, three stories per cell (plus the exemplar)."""
    rows, vectors = [], []
    angles = {(0.0, 0.5): 0.2, (0.0, 1.5): 0.8, (0.1, 0.5): 0.1, (0.1, 1.5): 0.6}  # spread of a cell's stories
    perplexity = {(0.0, 0.5): 3.0, (0.0, 1.5): 30.0, (0.1, 0.5): 2.5, (0.1, 1.5): 6.0}
    rows.append({"story_id": "e", "min_p": 0.0, "temperature": 0.0, "is_exemplar": True, "perplexity": 2.0})
    vectors.append([1.0, 0.0])
    for (min_p, temperature), spread in angles.items():
        for k, angle in enumerate((-spread, 0.0, spread)):
            rows.append(
                {
                    "story_id": f"{min_p}-{temperature}-{k}",
                    "min_p": min_p,
                    "temperature": temperature,
                    "is_exemplar": False,
                    "perplexity": perplexity[(min_p, temperature)],
                }
            )
            vectors.append([math.cos(angle), math.sin(angle)])
    frame = pl.DataFrame(rows).with_columns(model_id=pl.lit("m"), prompt_id=pl.lit("p"), top_p=pl.lit(1.0))
    other = {score: pl.lit(1.0) for score in SCORE_LABELS if score not in frame.columns}
    return frame.with_columns(**other), np.array(vectors)


def test_frontier_has_a_point_per_sampler_and_temperature_with_diversity_and_perplexity():
    scores, vectors = cell_scores()
    table = frontier_table(scores, vectors, 200)
    assert table.select("min_p", "temperature", "sampler").rows() == [
        (0.0, 0.5, "min-p 0"),
        (0.0, 1.5, "min-p 0"),
        (0.1, 0.5, "min-p 0.1"),
        (0.1, 1.5, "min-p 0.1"),
    ]
    # three unit vectors at -a, 0, a: pairwise distances 1-cos(a), 1-cos(a), 1-cos(2a)
    expected = [(2 * (1 - math.cos(a)) + 1 - math.cos(2 * a)) / 3 for a in (0.2, 0.8, 0.1, 0.6)]
    assert table["diversity"].to_list() == pytest.approx(expected)
    assert table["quality"].to_list() == [3.0, 30.0, 2.5, 6.0] and set(table["quality_measure"]) == {"perplexity"}


def test_the_judges_coherence_is_the_quality_where_it_ran():
    scores, vectors = cell_scores()
    judge = pl.DataFrame({"story_id": scores["story_id"], "coherence": np.arange(scores.height, dtype=float)})
    table = frontier_table(scores, vectors, 200, judge)
    assert table["quality"].to_list() == [2.0, 5.0, 8.0, 11.0] and set(table["quality_measure"]) == {"judge_coherence"}


def test_quality_at_a_diversity_is_interpolated_along_the_line():
    line = pl.DataFrame({"diversity": [0.1, 0.3, 0.5], "quality": [2.0, 4.0, 10.0]})
    assert quality_at(line, 0.2) == pytest.approx(3.0) and quality_at(line, 0.4) == pytest.approx(7.0)
    assert math.isnan(quality_at(line, 0.6))


def test_the_sentence_names_the_sampler_with_the_lowest_perplexity_at_the_median_diversity():
    scores, vectors = cell_scores()
    sentences = frontier_sentences(frontier_table(scores, vectors, 200))
    # median diversity lies between the cells; min-p 0.1 reaches it at lower perplexity than min-p 0
    assert len(sentences) == 1 and "min-p 0.1 reaches the lowest perplexity" in sentences[0]
    assert "(others: min-p 0 " in sentences[0]


def test_with_the_judge_the_best_sampler_has_the_lowest_coherence_rating():
    """The study's coherence scale runs the other way (1 = very easy to follow, 5 = very hard): lower is better."""
    scores, vectors = cell_scores()
    ratings = {"0.0": 3.5, "0.1": 1.5}  # min-p 0.1 is the easier to follow
    judge = pl.DataFrame(
        {
            "story_id": scores["story_id"],
            "coherence": [ratings.get(story_id.split("-")[0], 3.0) for story_id in scores["story_id"]],
        }
    )
    sentence = frontier_sentences(frontier_table(scores, vectors, 200, judge))[0]
    assert "min-p 0.1 reaches the lowest coherence rating" in sentence and "(others: min-p 0 3.5)" in sentence


def test_with_one_temperature_the_samplers_are_listed_side_by_side():
    scores, vectors = cell_scores()
    kept = scores["temperature"].is_in([0.0, 1.5]).to_numpy()  # the exemplar and one temperature
    table = frontier_table(scores.filter(kept), vectors[kept], 200)
    sentence = frontier_sentences(table)[0]
    assert sentence.startswith("At the one temperature 1.5") and sentence.index("min-p 0.1") < sentence.index(
        "min-p 0 "
    )
