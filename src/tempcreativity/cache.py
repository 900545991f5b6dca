"""A content-addressed store: one small Parquet row per entry, named by a hash of everything that determines
it. Stories are keyed by model sha256, prompt tokens, sampling parameters, seed and engine; embeddings by
embedder and text. Each is computed once; any experiment, shard or re-run that asks for it reads it back."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import polars as pl

from tempcreativity.io import write_parquet_atomic

def cache_key(identity: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of what determines a story."""
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


class ContentStore:
    """Entries are one-row frames of ``schema``, whose ``cache_key`` column names them."""

    def __init__(self, root: str | Path, schema: dict[str, pl.DataType]):
        self.root, self.schema = Path(root), schema

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.parquet"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def read(self, keys: list[str]) -> pl.DataFrame:
        """The entries for ``keys``, in that order (every key must be present)."""
        if not keys:
            return pl.DataFrame(schema=self.schema)
        return pl.concat([pl.read_parquet(self.path(key)) for key in keys], how="vertical")

    def write(self, entries: pl.DataFrame) -> None:
        """Store each row under its cache_key, atomically, so a killed job leaves only complete entries."""
        for index in range(entries.height):
            row = entries.slice(index, 1)
            write_parquet_atomic(row, self.path(row["cache_key"][0]))
