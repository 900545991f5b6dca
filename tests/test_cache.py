"""The content-addressed store behind the generation and embedding caches."""

from __future__ import annotations

import polars as pl

from tempcreativity.cache import ContentStore, cache_key
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
