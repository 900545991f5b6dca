"""The study's own data (resources/peeperkorn2024/, BSD 3-Clause): its Tables 1 and 2 recomputed from its released
ratings, beside the values the paper printed, and its released stories scored with the pipeline's measures.

Edit distance and MiniLM cosine similarity to the study's exemplar need no model. With a model folder, each story
is also teacher-forced through that model after the study's raw prompt (vLLM prompt log-probabilities) for its
perplexity, and embedded with it (the ``model`` embedder). With the embedded SmolLM2 these are of course not the
study's Llama 2 values: what they show is that the mechanics run on real stories the project did not write."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from tempcreativity.peeperkorn import load_study_stories
from tempcreativity.ratings import descriptives, load_ratings, mixed_models

STUDY_PROMPT = "[INST]Write a story.[/INST]Here it is:\n\n"  # what the study sent to llama.cpp (BOS added by it)

# Values the study published that the pipeline reproduces from the released ratings, to the paper's precision (3
# decimals in Table 1, 4 in Table 2): as printed by the study's analysis notebook (maxpeeperkorn/creativity-parameter,
# analysis.ipynb), whose novelty R^2c .3849, mean alpha .639 and betas and SEs are the paper's. Table 1: mean, SD
# and Cronbach's alpha per item (coherence's mean is left out: the notebook recoded coherence as 6 - rating, the
# released file keeps the survey's direction; SD and alpha do not change). Table 2: the temperature rows of
# rating ~ temperature + (1 | participant), beta, SE and both R^2 as the study computed them.
PUBLISHED_TABLE1 = {
    "novelty": {"mean": 3.124, "sd": 1.165, "cronbach_alpha": 0.547},
    "typicality": {"mean": 3.199, "sd": 0.987, "cronbach_alpha": 0.664},
    "cohesion": {"mean": 3.689, "sd": 0.959, "cronbach_alpha": 0.596},
    "coherence": {"sd": 1.178, "cronbach_alpha": 0.749},
    "mean": {"cronbach_alpha": 0.639},
}
PUBLISHED_TABLE2 = {
    "novelty": {"beta": 0.3078, "se": 0.1376, "r2c": 0.3849, "r2m": 0.1524},
    "typicality": {"beta": -0.0954, "se": 0.1179, "r2c": 0.3388, "r2m": 0.1246},
    "cohesion": {"beta": -0.1810, "se": 0.1119, "r2c": 0.4064, "r2m": 0.1615},
    "coherence": {"beta": 0.2402, "se": 0.1221, "r2c": 0.6456, "r2m": 0.2830},
}


def with_published(table: pl.DataFrame, key: str, published: dict[str, dict[str, float]]) -> pl.DataFrame:
    """``table`` with a ``paper_<column>`` column beside each column the paper printed (null where it did not)."""
    columns = sorted({column for values in published.values() for column in values})
    return table.with_columns(
        pl.col(key)
        .replace_strict(
            {row: values.get(column) for row, values in published.items()}, default=None, return_dtype=pl.Float64
        )
        .alias(f"paper_{column}")
        for column in columns
    )


def teacher_forced_logprobs(
    texts: list[str], folder: Path, model: dict[str, Any]
) -> tuple[list[list[int]], list[list[float]]]:
    """Each text's token ids and their log-probabilities under the model, read after the study's raw prompt by
    teacher forcing (vLLM prompt log-probabilities, one engine for all texts)."""
    from transformers import AutoTokenizer
    from vllm import SamplingParams

    from tempcreativity.engine import start_engine, stop_engine
    from tempcreativity.model import trusts_remote_code

    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trusts_remote_code(model))
    prompt = tokenizer(STUDY_PROMPT)["input_ids"]
    stories = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    longest = max(len(prompt) + len(ids) for ids in stories)
    lengths = [len(prompt) + len(ids) + 1 for ids in stories]
    running = [
        start_engine(
            {**model, "max_model_len": max(model["max_model_len"], longest + 1)},
            folder,
            longest,
            lengths,
            prefill_only=True,
        )
    ]
    try:
        outputs = running[0].generate(
            [{"prompt_token_ids": prompt + ids} for ids in stories],
            SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0),
            use_tqdm=False,
        )
    finally:
        stop_engine(running.pop())  # frees its memory: the model embedder's engine comes next in the same process
    logprobs = []
    for ids, output in zip(stories, outputs):
        positions = output.prompt_logprobs[len(prompt) :]
        logprobs.append([float(position[token].logprob) for position, token in zip(positions, ids)])
    return stories, logprobs


def study_tables(data_dir: str | Path) -> dict[str, pl.DataFrame]:
    """Table 1 and Table 2 (temperature rows; the study's participant-only model, with the paper's values beside,
    then the crossed participant + story model) from the study's released ratings."""
    ratings = load_ratings(Path(data_dir) / "survey_ratings.csv")
    table2 = with_published(mixed_models(ratings, random_effects="both"), "rating", PUBLISHED_TABLE2)
    crossed = pl.col("random_effects") == "crossed"
    table2 = table2.filter(pl.col("predictor") == "temperature").with_columns(
        pl.when(crossed).then(None).otherwise(pl.col(name)).alias(name)
        for name in table2.columns
        if name.startswith("paper_")
    )
    return {"table1": with_published(descriptives(ratings), "item", PUBLISHED_TABLE1), "table2": table2}


def score_study_stories(
    data_dir: str | Path,
    cache_dir: str | Path,
    model_folder: str | Path | None = None,
    model: dict | None = None,
    model_embedder: dict | None = None,
) -> pl.DataFrame:
    """The study's exemplar and 31 rated stories scored against its exemplar: edit distance and MiniLM cosine;
    with ``model_folder`` also perplexity (teacher forcing) and the model's cosine similarity."""
    from tempcreativity.embedding import embed_stories
    from tempcreativity.model import folder_sha256
    from tempcreativity.scoring import score_stories

    stories = load_study_stories(data_dir)
    texts = stories["text"].to_list()
    vectors = {"minilm": embed_stories(texts, "minilm", {}, {"dtype": "float32"}, cache_dir)[0]}
    if model_folder is not None:
        model = {"dtype": "float32", "max_model_len": 2048, "tensor_parallel_size": 1, "engine_args": {}} | (
            model or {}
        )
        token_ids, logprobs = teacher_forced_logprobs(texts, Path(model_folder), model)
        stories = stories.with_columns(
            token_ids=pl.Series(token_ids, dtype=pl.List(pl.Int32)),
            logprobs=pl.Series(logprobs, dtype=pl.List(pl.Float64)),
            num_tokens=pl.Series([len(ids) for ids in token_ids], dtype=pl.Int32),
        )
        manifest = {"sha256": folder_sha256(Path(model_folder)), "folder": str(model_folder)}
        vectors["model"] = embed_stories(texts, "model", manifest, model, cache_dir, model_embedder)[0]
    return score_stories(stories, vectors)


STUDY_EMBEDDING = {"pooling": "last", "normalise": False}  # llama.cpp's embedding: last token, not normalised


def study_csvs(data_dir: str | Path, cache_dir: str | Path, model_folder: str | Path | None = None) -> dict[str, str]:
    """The study's outputs as CSV texts, by name: ``table1``, ``table2`` and ``story_scores`` (with a model
    folder, embedded as the study did: STUDY_EMBEDDING). Everything is computed before the caller writes any."""
    tables = study_tables(data_dir)
    tables["story_scores"] = score_study_stories(data_dir, cache_dir, model_folder, model_embedder=STUDY_EMBEDDING)
    return {name: table.write_csv(float_precision=6) for name, table in tables.items()}
