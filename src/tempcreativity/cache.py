"""A content-addressed store of generated stories: one small Parquet file per story, named by a hash of
everything that determines its text (model sha256, prompt tokens, sampling parameters, seed, engine).
A story is generated once; any experiment, shard or re-run that asks for the same thing reads it back."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import polars as pl

from tempcreativity.io import write_parquet_atomic

# The fields a cache entry holds (what the engine produced), with their Parquet types.
GENERATION_SCHEMA = {
    "cache_key": pl.String,
    "text": pl.String,
    "token_ids": pl.List(pl.Int32),
    "logprobs": pl.List(pl.Float64),
    "cumulative_logprob": pl.Float64,
    "num_tokens": pl.Int32,
    "finish_reason": pl.String,
    "prompt_num_tokens": pl.Int32,
}


def cache_key(identity: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of what determines a story."""
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


class GenerationCache:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.parquet"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def read(self, keys: list[str]) -> pl.DataFrame:
        """The entries for ``keys``, in that order (every key must be present)."""
        if not keys:
            return pl.DataFrame(schema=GENERATION_SCHEMA)
        return pl.concat([pl.read_parquet(self.path(key)) for key in keys], how="vertical")

    def write(self, entries: pl.DataFrame) -> None:
        """Store each row under its cache_key, atomically, so a killed job leaves only complete entries."""
        for index in range(entries.height):
            row = entries.slice(index, 1)
            write_parquet_atomic(row, self.path(row["cache_key"][0]))
