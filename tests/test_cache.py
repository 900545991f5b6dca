"""The content-addressed store behind the generation and embedding caches."""

from __future__ import annotations

import polars as pl
import pytest

from tempcreativity.cache import CacheEntryError, ContentStore, cache_key
from tempcreativity.generation import GENERATION_SCHEMA


def entry(key: str, text: str) -> dict:
    return {
        "cache_key": key, "text": text, "token_ids": [1, 2], "logprobs": [-0.5, -1.25],
        "cumulative_logprob": -1.75, "num_tokens": 2, "finish_reason": "length", "prompt_num_tokens": 7,
    }  # fmt: skip


def test_key_is_canonical_and_sensitive_to_every_field():
    identity = {"model_sha256": "abc", "sampling": {"temperature": 1.0, "seed": 3}, "prompt_token_ids": [1, 2]}
    reordered = {"prompt_token_ids": [1, 2], "sampling": {"seed": 3, "temperature": 1.0}, "model_sha256": "abc"}
    assert cache_key(identity) == cache_key(reordered)
    assert len(cache_key(identity)) == 64
    for changed in (
        {**identity, "model_sha256": "abd"},
        {**identity, "sampling": {"temperature": 1.0, "seed": 4}},
        {**identity, "sampling": {"temperature": 1.01, "seed": 3}},
        {**identity, "prompt_token_ids": [1, 3]},
    ):
        assert cache_key(changed) != cache_key(identity)


def test_write_then_read_in_the_asked_order(tmp_path):
    cache = ContentStore(tmp_path, GENERATION_SCHEMA)
    keys = [cache_key({"n": n}) for n in range(3)]
    cache.write(pl.DataFrame([entry(key, f"story {n}") for n, key in enumerate(keys)], schema=GENERATION_SCHEMA))
    assert all(cache.has(key) for key in keys) and not cache.has(cache_key({"n": 9}))
    back = cache.read([keys[2], keys[0]])
    assert back["text"].to_list() == ["story 2", "story 0"]
    assert back.schema == pl.Schema(GENERATION_SCHEMA)
    assert cache.read([]).height == 0


def test_a_damaged_entry_is_named_moved_aside_and_computed_again(tmp_path, capsys):
    cache = ContentStore(tmp_path, GENERATION_SCHEMA)
    keys = [cache_key({"n": n}) for n in range(3)]
    cache.write(pl.DataFrame([entry(key, f"story {n}") for n, key in enumerate(keys)], schema=GENERATION_SCHEMA))
    truncated, foreign = cache.path(keys[0]), cache.path(keys[1])
    truncated.write_bytes(truncated.read_bytes()[:40])  # a write cut short (a full disk, a killed copy)
    foreign.write_bytes(cache.path(keys[2]).read_bytes())  # an entry whose content belongs to another key
    for bad in (keys[0], keys[1]):
        with pytest.raises(CacheEntryError, match=str(cache.path(bad))):
            cache.read([bad])
    assert not cache.has(keys[0]) and not cache.has(keys[1]) and cache.has(keys[2])
    warnings = capsys.readouterr().err
    assert f"cache entry {truncated} cannot be read" in warnings
    assert f"cache entry {foreign} holds the entry of another key ({keys[2]})" in warnings
    assert not truncated.exists() and not foreign.exists()
    assert len(list((tmp_path / "quarantine").glob("*.parquet"))) == 2  # kept for a look, out of the way
    cache.write(pl.DataFrame([entry(keys[0], "story 0 again")], schema=GENERATION_SCHEMA))
    assert cache.read([keys[0]])["text"].to_list() == ["story 0 again"]


def test_fill_computes_only_the_missing_keys_once_and_keeps_streamed_entries(tmp_path):
    cache = ContentStore(tmp_path, GENERATION_SCHEMA)
    keys = [cache_key({"n": n}) for n in range(3)]
    cache.write(pl.DataFrame([entry(keys[0], "story 0")], schema=GENERATION_SCHEMA))
    asked = []

    def compute(missing):
        asked.append(list(missing))
        for key in missing:  # streamed: each entry stored as it arrives
            yield pl.DataFrame([entry(key, f"new {key[:4]}")], schema=GENERATION_SCHEMA)

    rows, missing = cache.fill([keys[1], keys[0], keys[2], keys[1]], compute)
    assert asked == [[keys[1], keys[2]]] and missing == [keys[1], keys[2]]
    assert rows["cache_key"].to_list() == [keys[1], keys[0], keys[2], keys[1]] and rows["text"][1] == "story 0"
    _, again = cache.fill(keys, compute)
    assert again == [] and len(asked) == 1

    def dies_after_one(missing):
        yield pl.DataFrame([entry(missing[0], "kept")], schema=GENERATION_SCHEMA)
        raise RuntimeError("killed")

    more = [cache_key({"n": n}) for n in (7, 8)]
    with pytest.raises(RuntimeError):
        cache.fill(more, dies_after_one)
    assert cache.has(more[0]) and not cache.has(more[1])
