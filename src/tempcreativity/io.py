"""Atomic file writes: write to a temporary name beside the target, then rename, so that a killed job never
leaves a file that looks complete."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import polars as pl

_UMASK = os.umask(0)
os.umask(_UMASK)


def _temporary_beside(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    os.chmod(name, 0o666 & ~_UMASK)  # mkstemp makes 0600; finished files get the usual permissions
    return Path(name)


def read_parquet_without(path: str | Path, unread: set[str]) -> pl.DataFrame:
    """The table at ``path`` without the columns ``unread`` (the generations' token lists, most of its memory, for a
    job that does not use them)."""
    return pl.read_parquet(path, columns=[name for name in pl.read_parquet_schema(path) if name not in unread])


def write_parquet_atomic(frame: pl.DataFrame, path: str | Path) -> None:
    """Write Parquet deterministically (same frame, same polars: same bytes) and atomically."""
    path = Path(path)
    temporary = _temporary_beside(path)
    try:
        frame.write_parquet(temporary, compression="zstd", statistics=True)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(text: str, path: str | Path) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(text.encode(), path)


def write_bytes_atomic(data: bytes, path: str | Path) -> None:
    """Write ``data`` to ``path`` atomically (a temporary name beside it, then a rename)."""
    path = Path(path)
    temporary = _temporary_beside(path)
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_texts_atomic(texts: dict[Path, str]) -> None:
    """Write several files as a set: every one to its temporary name first, then all renamed into place, so a
    failure while writing leaves the earlier set untouched."""
    staged = {}
    try:
        for path, text in texts.items():
            staged[Path(path)] = temporary = _temporary_beside(Path(path))
            temporary.write_text(text)
        for path, temporary in staged.items():
            os.replace(temporary, path)
    finally:
        for temporary in staged.values():
            temporary.unlink(missing_ok=True)


def write_json_atomic(data: Any, path: str | Path) -> None:
    write_text_atomic(json.dumps(data, indent=2, sort_keys=True) + "\n", path)


class OutputPathError(ValueError):
    """An output folder that cannot be written; the message names it and what is needed."""


def check_output_folder(path: str, option: str, holds: str) -> Path:
    """The folder ``path`` (given as ``option``, to hold ``holds``) if files can be written into it, checked before
    anything is computed and without creating it: not an empty path, not a file, and where it does not exist yet,
    its nearest existing parent a folder that can be written. OutputPathError, naming the path, otherwise."""
    needed = f"needed: a folder for {holds} (created if missing)"
    if not path.strip():
        raise OutputPathError(f"{option}: the path is empty; {needed}")
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"{option}: {path} is a file, not a folder; {needed}")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputPathError(f"{option}: {path} cannot be created: {existing} is a file, not a folder; {needed}")
    try:  # the one sure test of writing there (permissions, a read-only or kernel file system)
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise OutputPathError(
            f"{option}: {path} cannot be written ({existing}: {error.strerror or error}); {needed}, writable"
        ) from None
    return folder
