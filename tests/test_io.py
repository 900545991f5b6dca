"""Atomic writes: a failed or killed write leaves the previous file intact and no partial file."""

from __future__ import annotations

import polars as pl
import pytest

from tempcreativity.io import write_json_atomic, write_parquet_atomic


def test_parquet_write_is_deterministic(tmp_path):
    frame = pl.DataFrame({"a": [1, 2], "b": [[0.5, 0.25], [1.0]]})
    write_parquet_atomic(frame, tmp_path / "one.parquet")
    write_parquet_atomic(frame, tmp_path / "two.parquet")
    assert (tmp_path / "one.parquet").read_bytes() == (tmp_path / "two.parquet").read_bytes()
    assert pl.read_parquet(tmp_path / "one.parquet").equals(frame)


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "out.parquet"
    write_parquet_atomic(pl.DataFrame({"a": [1]}), target)
    before = target.read_bytes()

    def write_half_then_die(self, path, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"PAR1 partial")
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", write_half_then_die)
    with pytest.raises(KeyboardInterrupt):
        write_parquet_atomic(pl.DataFrame({"a": [2]}), target)
    assert target.read_bytes() == before
    assert [path.name for path in tmp_path.iterdir()] == ["out.parquet"]


def test_json_write_creates_folders_and_has_normal_permissions(tmp_path):
    target = tmp_path / "deep" / "stats.json"
    write_json_atomic({"b": 1, "a": 2}, target)
    assert target.read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'
    assert target.stat().st_mode & 0o044, "finished files are readable by group/others like any other file"
