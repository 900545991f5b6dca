"""Per-story measures against hand-computed values."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pytest

from tempcreativity import metrics


def test_perplexity_is_exp_of_mean_negative_logprob():
    assert metrics.perplexity([math.log(0.5), math.log(0.5)]) == pytest.approx(2.0)
    assert metrics.perplexity([math.log(0.5), math.log(0.125)]) == pytest.approx(4.0)  # exp((ln2 + ln8) / 2)
    assert metrics.perplexity([0.0]) == 1.0
    assert math.isnan(metrics.perplexity([]))


def test_character_edit_distance_is_divided_by_the_longer_text():
    assert metrics.edit_distance_chars("kitten", "sitting") == pytest.approx(3 / 7)
    assert metrics.edit_distance_chars("abc", "abc") == 0.0
    assert metrics.edit_distance_chars("abc", "xyz") == 1.0
    assert metrics.edit_distance_chars("", "abcd") == 1.0


def test_word_edit_distance_counts_whole_words_ignoring_case_and_punctuation():
    # "the cat sat" -> "the dog sat down": one substitution, one insertion, over 4 words
    assert metrics.edit_distance_words("The cat sat.", "the dog sat down") == pytest.approx(2 / 4)
    assert metrics.edit_distance_words("Don't stop!", "don't STOP") == 0.0


def test_words_keep_inner_apostrophes():
    assert metrics.words("It's a dog's life, isn't it?") == ["it's", "a", "dog's", "life", "isn't", "it"]


def test_distinct_n():
    tokens = ["a", "b", "a", "b", "c"]
    assert metrics.distinct_n(tokens, 1) == pytest.approx(3 / 5)
    assert metrics.distinct_n(tokens, 2) == pytest.approx(3 / 4)  # ab, ba, ab, bc
    assert metrics.distinct_n(tokens, 3) == pytest.approx(3 / 3)  # aba, bab, abc
    assert math.isnan(metrics.distinct_n(["a"], 2))


def test_compression_ratio_is_raw_over_gzip_size():
    text = "the cat sat on the mat " * 20
    expected = len(text.encode()) / len(gzip.compress(text.encode(), compresslevel=9, mtime=0))
    assert metrics.compression_ratio(text) == pytest.approx(expected)
    assert metrics.compression_ratio(text) > metrics.compression_ratio("A quick brown fox jumps over lazy dogs.")
    assert math.isnan(metrics.compression_ratio(""))


def test_cosine_similarity_row_by_row():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    b = np.array([[2.0, 0.0], [1.0, 0.0], [0.0, -1.0]])
    assert metrics.cosine_similarity(a, b) == pytest.approx([1.0, 1 / math.sqrt(2), -1.0])
    assert metrics.cosine_similarity(np.array([3.0, 4.0]), np.array([4.0, 3.0])) == pytest.approx(24 / 25)


def test_mean_pairwise_cosine_distance():
    # pairs: (x, y) distance 1, (x, x) 0, (y, x) 1 -> mean 2/3
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    assert metrics.mean_pairwise_cosine_distance(vectors) == pytest.approx(2 / 3)
    assert math.isnan(metrics.mean_pairwise_cosine_distance(vectors[:1]))


def test_mean_pairwise_edit_similarity():
    # "ab"-"ab": 1; "ab"-"cd": 0; "ab"-"cd": 0 -> 1/3
    assert metrics.mean_pairwise_edit_similarity(["ab", "ab", "cd"]) == pytest.approx(1 / 3)
    assert math.isnan(metrics.mean_pairwise_edit_similarity(["ab"]))


def test_self_similarity_of_a_large_cell_compares_a_seeded_sample_of_pairs():
    """All pairs up to SELF_SIMILARITY_MAX_PAIRS (quadratic work capped), else that many distinct pairs drawn at
    random: the same number on every run, and close to the all-pairs mean."""
    import random

    generator = random.Random(1)
    words = ["the", "fox", "sea", "storm", "light", "old", "ship", "night", "star", "home"]
    texts = [" ".join(generator.choices(words, k=generator.randint(5, 40))) for _ in range(120)]  # 7,140 pairs
    exact = metrics.mean_pairwise_edit_similarity(texts, max_pairs=10_000)
    sampled = metrics.mean_pairwise_edit_similarity(texts)
    assert metrics.SELF_SIMILARITY_MAX_PAIRS == 2000 < 120 * 119 // 2
    assert sampled == metrics.mean_pairwise_edit_similarity(texts), "seeded"
    assert sampled != exact and abs(sampled - exact) < 0.01, (sampled, exact)
    small = texts[:60]  # 1,770 pairs: all of them
    assert metrics.mean_pairwise_edit_similarity(small) == metrics.mean_pairwise_edit_similarity(small, 10_000)


def test_the_sampled_pairs_are_distinct_pairs_of_the_cell(monkeypatch):
    """The pair numbers drawn map to distinct (i, j), i < j < n, up to the 100,000-story bound's cells."""
    compared = []
    monkeypatch.setattr(metrics, "edit_distance_chars", lambda a, b: compared.append((a, b)) or 0.0)
    n = 800
    metrics.mean_pairwise_edit_similarity(list(range(n)), max_pairs=5000)
    assert len(compared) == len(set(compared)) == 5000
    assert all(0 <= i < j < n for i, j in compared)
