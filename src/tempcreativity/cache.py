"""A content-addressed store: one small Parquet row per entry, named by a hash of everything that determines
it. Stories are keyed by model sha256, prompt tokens, sampling parameters, seed and engine; embeddings by
embedder and text. Each is computed once; any experiment, shard or re-run that asks for it reads it back.

Every entry is verified when it is looked up: the file must parse, hold one row of the store's schema, and name
the key its file is named by. A bad entry (a truncated write from a full disk, a file copied over another) is
moved aside under ``<root>/quarantine/`` with a warning that names it, and is computed again."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

from tempcreativity.io import write_parquet_atomic


def cache_key(identity: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of what determines a story."""
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


class CacheEntryError(RuntimeError):
    """A cache entry that cannot be used; the message names its file."""


class ContentStore:
    """Entries are one-row frames of ``schema``, whose ``cache_key`` column names them."""

    def __init__(self, root: str | Path, schema: dict[str, pl.DataType]):
        self.root, self.schema = Path(root), schema

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.parquet"

    def _load(self, key: str) -> pl.DataFrame:
        """The verified entry of ``key``; CacheEntryError (naming the file and the fault) if it is not usable."""
        path = self.path(key)
        try:
            entry = pl.read_parquet(path)
        except Exception as error:  # polars raises several kinds for a damaged file
            raise CacheEntryError(f"cache entry {path} cannot be read ({type(error).__name__}: {error})") from None
        if entry.schema != pl.Schema(self.schema) or entry.height != 1:
            raise CacheEntryError(f"cache entry {path} does not hold one row of the expected columns")
        if entry["cache_key"][0] != key:
            raise CacheEntryError(f"cache entry {path} holds the entry of another key ({entry['cache_key'][0]})")
        return entry

    def lookup(self, key: str) -> pl.DataFrame | None:
        """The usable entry of ``key``, or None. A damaged one is moved aside (and reported), so it is computed
        again."""
        if not self.path(key).is_file():
            return None
        try:
            return self._load(key)
        except CacheEntryError as error:
            self._quarantine(key, error)
            return None

    def has(self, key: str) -> bool:
        """Whether a usable entry exists (a damaged one is moved aside, as by lookup)."""
        return self.lookup(key) is not None

    def _quarantine(self, key: str, error: CacheEntryError) -> None:
        target = self.root / "quarantine" / f"{key}.{time.strftime('%Y%m%dT%H%M%S')}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path(key), target)
        print(f"warning: {error}; moved to {target}, it will be computed again", file=sys.stderr)

    def read(self, keys: list[str]) -> pl.DataFrame:
        """The entries for ``keys``, in that order (every key must be present and valid)."""
        return self._stack([self._load(key) for key in keys])

    def _stack(self, entries: list[pl.DataFrame]) -> pl.DataFrame:
        """One frame of ``entries``, in their order (an empty frame of the store's schema for none)."""
        return pl.concat(entries, how="vertical") if entries else pl.DataFrame(schema=self.schema)

    def fill(self, keys: list[str], compute) -> tuple[pl.DataFrame, list[str]]:
        """The entries for ``keys`` (in that order) and the distinct keys that had to be computed. ``compute`` gets
        those keys and returns one frame of their entries, or yields several: each is stored as it arrives, so a job
        that dies part-way keeps what it computed."""
        found = {key: self.lookup(key) for key in dict.fromkeys(keys)}  # each entry read once, then kept
        missing = [key for key, entry in found.items() if entry is None]
        if missing:
            produced = compute(missing)
            for entries in [produced] if isinstance(produced, pl.DataFrame) else produced:
                self.write(entries)
            found |= {key: self._load(key) for key in missing}  # as stored
        return self._stack([found[key] for key in keys]), missing

    def write(self, entries: pl.DataFrame) -> None:
        """Store each row under its cache_key, atomically, so a killed job leaves only complete entries."""
        for index in range(entries.height):
            row = entries.slice(index, 1)
            write_parquet_atomic(row, self.path(row["cache_key"][0]))
