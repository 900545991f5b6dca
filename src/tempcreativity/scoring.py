"""The scores table: every story measured on its own and against the exemplar of its prompt (and model)."""

from __future__ import annotations

import numpy as np
import polars as pl

from tempcreativity import metrics
from tempcreativity.axes import SAMPLER_AXES
from tempcreativity.progress import bar

# Scores summarised per temperature and tested for a trend, with their labels in tables and figures.
SCORE_LABELS = {
    "perplexity": "Perplexity",
    "cosine_similarity": "Cosine similarity to exemplar",
    "edit_distance": "Edit distance to exemplar (characters)",
    "edit_distance_words": "Edit distance to exemplar (words)",
    "num_tokens": "Length (tokens)",
    "num_words": "Length (words)",
    "distinct_1": "Distinct-1",
    "distinct_2": "Distinct-2",
    "distinct_3": "Distinct-3",
    "compression_ratio": "Compression ratio (gzip)",
}


STORY_MEASURES = (
    "perplexity",
    "edit_distance",
    "edit_distance_words",
    "num_words",
    "distinct_1",
    "distinct_2",
    "distinct_3",
    "compression_ratio",
    "identical_to_exemplar",
)


def story_measures(text: str, reference: str, logprobs: list[float]) -> dict[str, float | int | bool]:
    """One story's measures (STORY_MEASURES, in order): its own, and its distances to ``reference``, the text of
    its exemplar."""
    story_words = metrics.words(text)
    return {
        "perplexity": metrics.perplexity(logprobs),
        "edit_distance": metrics.edit_distance_chars(text, reference),
        "edit_distance_words": metrics.edit_distance_words(text, reference),
        "num_words": len(story_words),
        **{f"distinct_{n}": metrics.distinct_n(story_words, n) for n in (1, 2, 3)},
        "compression_ratio": metrics.compression_ratio(text),
        "identical_to_exemplar": text == reference,
    }


def _flat_lists(column: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """A list column as one flat array of its values and each row's start offset (row i is values[offsets[i]:
    offsets[i + 1]]): 8 bytes a token, where Python lists of floats took 32 (3 GB for 100,000 stories)."""
    array = column.to_arrow()
    array = array.combine_chunks() if hasattr(array, "combine_chunks") else array
    offsets = array.offsets.to_numpy()
    return array.values.to_numpy(zero_copy_only=False), offsets


def score_stories(generations: pl.DataFrame, vectors: dict[str, np.ndarray]) -> pl.DataFrame:
    """One row per story (same order as ``generations``), with the columns that name its cell. ``vectors`` maps
    embedder name to one row per story; the first embedder gives ``cosine_similarity``, every embedder its own
    ``cosine_<name>`` column. A story is compared with the exemplar of its prompt and model."""
    group = [column for column in ("model_id", "prompt_id") if column in generations.columns]
    owners = generations.select(pl.concat_str(group, separator="\x1f")).to_series().to_list()
    exemplars = {
        owner: index for index, (owner, exemplar) in enumerate(zip(owners, generations["is_exemplar"])) if exemplar
    }
    missing = sorted(set(owners) - set(exemplars))
    if missing:
        named = [owner.replace("\x1f", " x ") for owner in missing]
        raise ValueError(f"no exemplar for prompt(s) {named}: every prompt (of every model) needs its greedy exemplar")
    texts, (values, offsets) = generations["text"].to_list(), _flat_lists(generations["logprobs"])
    exemplar_of = [exemplars[owner] for owner in owners]
    measured = [
        story_measures(texts[i], texts[exemplar_of[i]], values[offsets[i] : offsets[i + 1]])
        for i in bar(range(len(texts)), "Scored stories", "story")
    ]
    columns: dict[str, list] = {name: [row[name] for row in measured] for name in STORY_MEASURES}
    for index, (name, matrix) in enumerate(vectors.items()):
        similarity = metrics.cosine_similarity(matrix, matrix[exemplar_of])
        columns[f"cosine_{name}"] = np.clip(similarity, -1.0, 1.0).tolist()
        if index == 0:
            columns["cosine_similarity"] = columns[f"cosine_{name}"]
    cell = [column for column in ("model_id", "prompt_id", *SAMPLER_AXES) if column in generations.columns]
    identity = generations.select("story_id", *cell, "temperature", "seed", "is_exemplar", "num_tokens")
    return identity.with_columns(pl.DataFrame(columns))


STUDY_MIN_P = 0.05  # llama-cpp-python 0.2.32's default min_p, which the study never changed


def share_below_raw_min_p(generations: pl.DataFrame, min_p: float = STUDY_MIN_P) -> pl.DataFrame:
    """Per prompt and temperature (pooled over models and other settings), the share of sampled tokens whose raw
    probability is below ``min_p`` times the raw probability of the most likely token: the tokens the study's
    hidden min-p (applied to the model's own distribution, before temperature) would never have sampled. From each
    token's stored raw log-probability and the most likely token's (``logprobs``, ``top_logprobs``); the exemplars
    are left out."""
    threshold = float(np.log(min_p))
    per_story = (
        generations.filter(~pl.col("is_exemplar"))
        .select(
            "prompt_id",
            "temperature",
            pl.col("logprobs").list.len().alias("tokens"),
            ((pl.col("logprobs") - pl.col("top_logprobs")).list.eval(pl.element() < threshold).list.sum()).alias(
                "below"
            ),
        )
        .filter(pl.col("tokens") > 0)
    )  # (per story, not per token: 100,000 stories' tokens exploded took gigabytes)
    return (
        per_story.group_by("prompt_id", "temperature", maintain_order=True)
        .agg(pl.col("tokens").sum(), pl.col("below").sum())
        .select("prompt_id", "temperature", "tokens", (pl.col("below") / pl.col("tokens")).alias("share"))
        .sort("prompt_id", "temperature")
    )
