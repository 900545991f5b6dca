"""The judge's rubric and prompts (the judge itself runs on the embedded model in test_pipeline.py)."""

from __future__ import annotations

import pytest

from tempcreativity.judge import RUBRIC, judge_messages, truncate_tokens
from tempcreativity.ratings import RATING_ITEMS


def test_rubric_covers_the_four_criteria_and_compares_only_novelty_and_typicality():
    assert tuple(RUBRIC) == RATING_ITEMS
    for criterion in RATING_ITEMS:
        prompt = judge_messages(criterion, "THE STORY", "THE EXEMPLAR")[-1]["content"]
        assert (
            "THE STORY" in prompt
            and "THE EXEMPLAR" in prompt
            and prompt.endswith(f"Rate the STORY's {criterion}. Answer with one number from 1 to 5.")
        )
        rubric_line = next(line for line in prompt.splitlines() if line.startswith(f"- {criterion}:"))
        assert ("Compare the STORY with the EXAMPLE" in rubric_line) == (criterion in ("novelty", "typicality"))
    coherence = judge_messages("coherence", "s", "e")[-1]["content"]
    assert "- coherence: Read the STORY. How hard is it to follow" in coherence  # higher = less coherent
    assert "1 = very easy to follow, 5 = very hard to follow" in coherence


def test_a_storys_questions_share_everything_but_the_question_so_prefix_caching_reuses_it(embedded_tokenizer):
    """Example, story and rubric, then the criterion's request: the four questions about a story share every token
    but the last few, and questions about two stories share the example."""
    import os

    prefix = os.path.commonprefix

    def tokens(criterion, story):
        messages = judge_messages(criterion, story, "Once upon a time there was an example. " * 20)
        rendered = embedded_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return embedded_tokenizer(rendered, add_special_tokens=False)["input_ids"]

    story = "A fox found a key under the snow and kept it for a winter. " * 10
    questions = [tokens(criterion, story) for criterion in RATING_ITEMS]
    shared = len(prefix(questions))
    assert all(len(question) - shared < 25 for question in questions), "only the short request differs"
    assert shared > len(embedded_tokenizer(story)["input_ids"]) + 200, "example and story are shared"
    other_story = tokens("novelty", "A crow counted the stars. " * 10)
    assert len(prefix([questions[0], other_story])) > 200, "another story's questions share the example"


def test_long_texts_are_cut_to_the_token_budget(embedded_tokenizer):
    text = "word " * 500
    cut = truncate_tokens(embedded_tokenizer, text, 50)
    assert len(embedded_tokenizer(cut, add_special_tokens=False)["input_ids"]) <= 50
    assert truncate_tokens(embedded_tokenizer, "short story", 50) == "short story"


def test_expected_score_is_the_mean_of_the_answer_distribution_over_1_to_5():
    import math

    from tempcreativity.judge import expected_score

    score, mass = expected_score([math.log(0.1), math.log(0.1), math.log(0.2), math.log(0.05), math.log(0.05)])
    assert score == pytest.approx((1 * 0.1 + 2 * 0.1 + 3 * 0.2 + 4 * 0.05 + 5 * 0.05) / 0.5) and mass == pytest.approx(
        0.5
    )
    assert expected_score([0.0, -1e9, -1e9, -1e9, -1e9])[0] == pytest.approx(1.0)


def test_the_five_answers_are_single_tokens_of_the_embedded_model(embedded_tokenizer):
    from tempcreativity.judge import SCALE, scale_token_ids

    ids = scale_token_ids(embedded_tokenizer)
    assert [embedded_tokenizer.decode([token]) for token in ids] == SCALE


def test_judge_against_people_agrees_with_itself_and_names_disagreement():
    import polars as pl

    from tempcreativity.judge_validation import judge_vs_people, people_means, verdict

    people = pl.DataFrame(
        {
            "story_id": ["a", "a", "b", "b", "c", "c", "d", "d"],
            "participant_id": ["p", "q"] * 4,
            **{item: [1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 5.0] for item in RATING_ITEMS},
        }
    )
    means = people_means(people)
    assert means["novelty"].to_list() == [1.5, 2.5, 3.5, 4.5] and set(means["raters"]) == {2}
    judge = means.select("story_id", *RATING_ITEMS).with_columns(novelty=6 - pl.col("novelty"))  # novelty reversed
    table = judge_vs_people(judge, people, 200)
    rows = {row["criterion"]: row for row in table.iter_rows(named=True)}
    assert rows["typicality"]["rho"] == pytest.approx(1.0) and rows["typicality"][
        "krippendorff_alpha"
    ] == pytest.approx(1.0)
    assert rows["novelty"]["rho"] == pytest.approx(-1.0) and rows["novelty"]["krippendorff_alpha"] < 0
    assert set(table["n"]) == {4}
    assert "against people on novelty (ρ = -1.00)" in verdict(table)
