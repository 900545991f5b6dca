"""The judge's rubric and prompts (the judge itself runs on the embedded model in test_pipeline.py)."""

from __future__ import annotations

from tempcreativity.judge import RUBRIC, judge_messages, truncate_tokens
from tempcreativity.ratings import RATING_ITEMS


def test_rubric_covers_the_four_criteria_and_compares_only_novelty_and_typicality():
    assert tuple(RUBRIC) == RATING_ITEMS
    for criterion in RATING_ITEMS:
        prompt = judge_messages(criterion, "THE STORY", "THE EXEMPLAR")[-1]["content"]
        assert "THE STORY" in prompt and "from 1 to 5" in prompt
        assert ("THE EXEMPLAR" in prompt) == (criterion in ("novelty", "typicality"))
    assert "hard to follow" in judge_messages("coherence", "s", "e")[-1]["content"]  # higher = less coherent


def test_long_texts_are_cut_to_the_token_budget(embedded_tokenizer):
    text = "word " * 500
    cut = truncate_tokens(embedded_tokenizer, text, 50)
    assert len(embedded_tokenizer(cut, add_special_tokens=False)["input_ids"]) <= 50
    assert truncate_tokens(embedded_tokenizer, "short story", 50) == "short story"
