"""Per-story measures: perplexity, similarity and distance to the exemplar, and surface diversity.

Plain functions on strings and numbers, without file I/O; each is unit-tested against hand-computed values."""

from __future__ import annotations

import gzip
import math
import re
from collections.abc import Sequence

import numpy as np
from rapidfuzz.distance import Levenshtein

_WORD = re.compile(r"\w+(?:['’]\w+)*")


def perplexity(logprobs: Sequence[float]) -> float:
    """exp of the mean negative log-probability of the story's tokens under the model (nan for no tokens)."""
    if len(logprobs) == 0:
        return math.nan
    return math.exp(-float(np.mean(logprobs)))


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters, digits and inner apostrophes); punctuation is dropped."""
    return _WORD.findall(text.lower())


def edit_distance_chars(text: str, reference: str) -> float:
    """Character-level Levenshtein distance divided by the longer text's length, in [0, 1] (the default)."""
    return Levenshtein.normalized_distance(text, reference)


def edit_distance_words(text: str, reference: str) -> float:
    """Word-level Levenshtein distance (insert, delete, substitute whole words) divided by the longer word count."""
    return Levenshtein.normalized_distance(words(text), words(reference))


def distinct_n(tokens: Sequence[str], n: int) -> float:
    """Distinct n-grams divided by all n-grams of the token sequence (nan when it has none)."""
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(grams) if grams else math.nan


def compression_ratio(text: str) -> float:
    """UTF-8 size divided by gzip size (level 9, no timestamp): higher means more repetitive text."""
    raw = text.encode()
    return len(raw) / len(gzip.compress(raw, compresslevel=9, mtime=0)) if raw else math.nan


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity along the last axis (row by row for matrices; broadcasts like numpy)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def mean_pairwise_cosine_distance(vectors: np.ndarray) -> float:
    """Mean of 1 - cosine similarity over all distinct pairs of rows (nan for fewer than two rows)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    if len(vectors) < 2:
        return math.nan
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    upper = np.triu_indices(len(vectors), k=1)
    return float(np.mean(1.0 - similarity[upper]))


def mean_cosine_distance_to_others(vectors: np.ndarray) -> np.ndarray:
    """Per row, the mean cosine distance (scipy's, 1 - cosine similarity) to every other row; their mean is
    ``mean_pairwise_cosine_distance`` (nan rows for fewer than two rows)."""
    from scipy.spatial.distance import pdist, squareform

    vectors = np.asarray(vectors, dtype=np.float64)
    if len(vectors) < 2:
        return np.full(len(vectors), math.nan)
    return squareform(pdist(vectors, "cosine")).sum(axis=1) / (len(vectors) - 1)


# Self-similarity compares every pair of a cell's texts up to this many pairs (a cell of 63 stories); a larger cell
# compares this many distinct pairs drawn at random (seeded). Edit distance costs about 0.5 ms a pair of 1,000-token
# stories, so all pairs of a 793-story cell (the 100,000-story grid bound) would take 2.7 min a cell; the sample's mean
# is within about 0.005 of all pairs' (benchmarks/RESULTS.md, "The analysis at sweep scale").
SELF_SIMILARITY_MAX_PAIRS = 2000


def mean_pairwise_edit_similarity(texts: Sequence[str], max_pairs: int = SELF_SIMILARITY_MAX_PAIRS) -> float:
    """Self-similarity of a set of texts: mean of 1 - normalised character edit distance over distinct pairs, all of
    them up to ``max_pairs``, else ``max_pairs`` distinct pairs drawn uniformly at random (seed 0)."""
    n = len(texts)
    if n < 2:
        return math.nan
    total = n * (n - 1) // 2
    if total <= max_pairs:
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    else:  # pair number k (0 <= k < total) in row-major order of the upper triangle
        chosen = np.random.default_rng(0).choice(total, size=max_pairs, replace=False)
        rows = n - 2 - np.floor(np.sqrt(-8 * chosen + 4 * n * (n - 1) - 7) / 2 - 0.5).astype(np.int64)
        columns = chosen + rows + 1 - total + (n - rows) * (n - rows - 1) // 2
        pairs = list(zip(rows.tolist(), columns.tolist()))
    return float(np.mean([1.0 - edit_distance_chars(texts[i], texts[j]) for i, j in pairs]))
