"""A content-addressed store: one small Parquet row per entry, named by a hash of everything that determines
it. Stories are keyed by model sha256, prompt tokens, sampling parameters, seed and engine; embeddings by
embedder and text. Each is computed once; any experiment, shard or re-run that asks for it reads it back.

Every entry carries the sha256 of its bytes in a sidecar file beside it, ``<key>.parquet.sha256`` (in
``sha256sum``'s format, so ``sha256sum -c`` checks a folder by hand). The sidecar is written (atomically) before
the entry is (atomically) renamed into place, so an entry that exists always had its digest written first: a job
killed between the two leaves a digest without an entry (nothing to read: computed again), or, when it replaced an
entry, the old entry under the new digest (a mismatch: computed again); never an entry that looks valid and is not.

Every entry is verified when it is looked up, in this order: its bytes must match their recorded sha256, checked
before the Parquet reader sees them (a damaged file can make the reader panic, or abort the process asking for an
impossible allocation: measured, one bit flipped in a cached story did so 6 times in 4,829); then the file must
parse, hold one row of the store's schema, and name the key its file is named by. A bad entry (a flipped bit, a
truncated write from a full disk, a file copied over another, a reader panic, a file that cannot be read) is moved
aside under ``<root>/quarantine/`` with its sidecar and a warning that names it, and is computed again.

Entries written before digests existed have no sidecar. They are kept, not recomputed (a cache of GPU hours, and
their keys are unchanged): such an entry is read as before (a reader panic counts as damage), checked for its
schema and key, and then given the sidecar of its bytes, so it is digest-checked from then on. What the digest
cannot do is tell whether a legacy entry changed before it was adopted."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

from tempcreativity.io import write_bytes_atomic, write_text_atomic

DIGEST_SUFFIX = ".sha256"
_DIGEST_LINE = re.compile(r"([0-9a-f]{64})  (\S+)\n?")


def cache_key(identity: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of what determines a story."""
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


class CacheEntryError(RuntimeError):
    """A cache entry that cannot be used; the message names its file."""


class ContentStore:
    """Entries are one-row frames of ``schema``, whose ``cache_key`` column names them; each with the sha256 of
    its bytes beside it (see the module's docstring)."""

    def __init__(self, root: str | Path, schema: dict[str, pl.DataType]):
        self.root, self.schema = Path(root), schema

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.parquet"

    def digest_path(self, key: str) -> Path:
        """The sidecar holding the sha256 of the entry's bytes."""
        path = self.path(key)
        return path.with_name(path.name + DIGEST_SUFFIX)

    def _recorded_digest(self, key: str) -> str | None:
        """The sha256 recorded for ``key``'s entry; None when the entry has no sidecar (written before digests)."""
        sidecar = self.digest_path(key)
        try:
            text = sidecar.read_text(encoding="ascii")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as error:
            raise CacheEntryError(
                f"cache entry {self.path(key)} cannot be checked: its digest file {sidecar.name} cannot be read "
                f"({type(error).__name__}: {error})"
            ) from None
        match = _DIGEST_LINE.fullmatch(text)
        if match is None or match.group(2) != self.path(key).name:
            raise CacheEntryError(
                f"cache entry {self.path(key)} cannot be checked: its digest file {sidecar.name} is damaged (expected "
                f"one line '<64 hex digits>  {self.path(key).name}', found {text[:100]!r})"
            )
        return match.group(1)

    def decode(self, key: str, data: bytes, recorded: str | None) -> pl.DataFrame:
        """The entry of ``key`` from its file's bytes, checked: ``data`` must match the ``recorded`` sha256 (before
        anything parses it; None for an entry written before digests), parse, hold one row of the store's schema
        and name ``key``. CacheEntryError, naming the file and the fault, otherwise."""
        path = self.path(key)
        if recorded is not None:
            actual = hashlib.sha256(data).hexdigest()
            if actual != recorded:
                raise CacheEntryError(
                    f"cache entry {path} cannot be read: its bytes are damaged (their sha256 is {actual[:16]}..., "
                    f"the entry was written with {recorded[:16]}..., recorded in {path.name}{DIGEST_SUFFIX})"
                )
        try:
            entry = pl.read_parquet(io.BytesIO(data))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:  # several kinds for a damaged file, and pyo3's PanicException (a BaseException)
            raise CacheEntryError(f"cache entry {path} cannot be read ({type(error).__name__}: {error})") from None
        if entry.schema != pl.Schema(self.schema) or entry.height != 1:
            raise CacheEntryError(f"cache entry {path} does not hold one row of the expected columns")
        if entry["cache_key"][0] != key:
            raise CacheEntryError(f"cache entry {path} holds the entry of another key ({entry['cache_key'][0]})")
        return entry

    def _load(self, key: str) -> pl.DataFrame:
        """The verified entry of ``key``; CacheEntryError (naming the file and the fault) if it is not usable. An
        entry without a digest (written before digests) that passes the checks is given its digest."""
        path = self.path(key)
        try:
            data = path.read_bytes()
        except OSError as error:  # a folder in its place, no permission, an I/O error
            raise CacheEntryError(f"cache entry {path} cannot be read ({type(error).__name__}: {error})") from None
        recorded = self._recorded_digest(key)
        entry = self.decode(key, data, recorded)
        if recorded is None:
            self._write_digest(key, hashlib.sha256(data).hexdigest())
        return entry

    def lookup(self, key: str) -> pl.DataFrame | None:
        """The usable entry of ``key``, or None. A damaged one is moved aside (and reported), so it is computed
        again."""
        if not os.path.lexists(self.path(key)):
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
        """Move the entry of ``key`` and its digest file (where there is one) under <root>/quarantine/."""
        target = self.root / "quarantine" / f"{key}.{time.strftime('%Y%m%dT%H%M%S')}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path(key), target)
        if self.digest_path(key).exists():
            os.replace(self.digest_path(key), target.with_name(target.name + DIGEST_SUFFIX))
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

    def _write_digest(self, key: str, digest: str) -> None:
        write_text_atomic(f"{digest}  {self.path(key).name}\n", self.digest_path(key))

    def write(self, entries: pl.DataFrame) -> None:
        """Store each row under its cache_key: first the sha256 of its bytes, then the entry, each atomically, so a
        killed job leaves only complete entries, each with its digest."""
        for index in range(entries.height):
            row = entries.slice(index, 1)
            key = row["cache_key"][0]
            buffer = io.BytesIO()
            row.write_parquet(buffer, compression="zstd", statistics=True)
            data = buffer.getvalue()
            self._write_digest(key, hashlib.sha256(data).hexdigest())
            write_bytes_atomic(data, self.path(key))
