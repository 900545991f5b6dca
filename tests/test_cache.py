"""The content-addressed store behind the generation and embedding caches."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tempcreativity.cache import CacheEntryError, ContentStore, cache_key
from tempcreativity.generation import GENERATION_SCHEMA


def entry(key: str, text: str) -> dict:
    return {
        "cache_key": key,
        "text": text,
        "token_ids": [1, 2],
        "logprobs": [-0.5, -1.25],
        "cumulative_logprob": -1.75,
        "num_tokens": 2,
        "finish_reason": "length",
        "prompt_num_tokens": 7,
    }


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
    cache.digest_path(keys[1]).unlink()  # (as written before digests: the key check, not the digest, catches it)
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


# --- digests: every entry's bytes are checked against the sha256 written with it, before anything parses them ---


def story_entry(key: str, tokens: int = 200, seed: int = 0) -> pl.DataFrame:
    """A realistic cached story: a few hundred tokens of text, token ids and log-probabilities."""
    rng = np.random.default_rng(seed)
    words = ["the", "old", "lighthouse", "keeper", "watched", "a", "storm", "roll", "in", "over", "grey", "water"]
    logprobs = np.log(rng.uniform(0.01, 1.0, tokens))
    return pl.DataFrame(
        [
            {
                "cache_key": key,
                "text": " ".join(rng.choice(words, tokens)) + ".",
                "token_ids": rng.integers(0, 49152, tokens).tolist(),
                "logprobs": logprobs.tolist(),
                "top_logprobs": np.maximum(logprobs, np.log(rng.uniform(0.3, 1.0, tokens))).tolist(),
                "cumulative_logprob": float(logprobs.sum()),
                "num_tokens": tokens,
                "finish_reason": "length",
                "prompt_num_tokens": 31,
            }
        ],
        schema=GENERATION_SCHEMA,
    )


def test_every_flipped_bit_of_a_cached_story_is_refused_before_it_is_parsed(tmp_path, monkeypatch, capsys):
    """One bit flipped in each position of a cached story used to be accepted with changed data 262 times in 4,829,
    to raise pyo3's PanicException (past `except Exception`) 53 times and to abort the process 6 times. Now the
    digest refuses every one of them before the Parquet reader sees the bytes, so none can crash it."""
    cache = ContentStore(tmp_path, GENERATION_SCHEMA)
    key = cache_key({"story": 1})
    original = story_entry(key)
    cache.write(original)
    data, recorded = cache.path(key).read_bytes(), cache._recorded_digest(key)
    assert cache.decode(key, data, recorded).equals(original)
    parsed = []
    real_reader = pl.read_parquet
    monkeypatch.setattr(pl, "read_parquet", lambda source, **kw: parsed.append(1) or real_reader(source, **kw))
    outcome = {"refused": 0, "accepted": 0, "accepted_changed": 0, "crashed": 0}
    for position in range(len(data) * 8):  # every bit of the file
        flipped = bytearray(data)
        flipped[position // 8] ^= 1 << (position % 8)
        try:
            entry = cache.decode(key, bytes(flipped), recorded)
        except CacheEntryError as error:
            outcome["refused"] += "its bytes are damaged" in str(error)
            continue
        except BaseException:  # noqa: BLE001 (what the test counts: anything else is a crash)
            outcome["crashed"] += 1
            continue
        outcome["accepted"] += 1
        outcome["accepted_changed"] += not entry.equals(original)
    assert outcome == {"refused": len(data) * 8, "accepted": 0, "accepted_changed": 0, "crashed": 0}
    assert parsed == [], "no damaged entry reached the Parquet reader"
    assert len(data) > 4000  # a story of a few hundred tokens, as in the issue
    monkeypatch.undo()

    # the same through the files: a seeded sample of flipped entries, and every digit of the digest file changed
    rng = np.random.default_rng(25)
    for position in rng.choice(len(data) * 8, 40, replace=False):
        flipped = bytearray(data)
        flipped[position // 8] ^= 1 << (position % 8)
        cache.path(key).write_bytes(bytes(flipped))
        assert cache.lookup(key) is None and not cache.path(key).exists() and not cache.digest_path(key).exists()
        cache.write(original)
    line = cache.digest_path(key).read_text()
    for index in range(64):
        cache.digest_path(key).write_text(line[:index] + ("0" if line[index] != "0" else "1") + line[index + 1 :])
        assert cache.lookup(key) is None
        cache.write(original)
    assert cache.lookup(key).equals(original)
    warnings = capsys.readouterr().err
    assert warnings.count(f"cache entry {cache.path(key)} cannot be read: its bytes are damaged") == 40 + 64
    assert len(list((tmp_path / "quarantine").glob("*.parquet"))) >= 1  # (same second: later ones replace earlier)


def test_a_reader_panic_or_an_unreadable_entry_is_damage_but_an_interrupt_is_not(tmp_path, monkeypatch, capsys):
    from polars.exceptions import PanicException

    cache = ContentStore(tmp_path, GENERATION_SCHEMA)
    keys = [cache_key({"n": n}) for n in range(3)]
    cache.write(pl.concat([story_entry(key, 20, n) for n, key in enumerate(keys)]))

    def panics(*_, **__):
        raise PanicException("called `Option::unwrap()` on a `None` value")

    monkeypatch.setattr(pl, "read_parquet", panics)
    assert cache.lookup(keys[0]) is None and not cache.path(keys[0]).exists()
    assert "cannot be read (PanicException: called `Option::unwrap()`" in capsys.readouterr().err

    def interrupted(*_, **__):
        raise KeyboardInterrupt

    monkeypatch.setattr(pl, "read_parquet", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cache.lookup(keys[1])
    assert cache.path(keys[1]).exists()  # Ctrl-C is not damage: nothing moved aside
    monkeypatch.undo()
    cache.path(keys[2]).unlink()
    cache.path(keys[2]).mkdir()  # a folder where the entry should be: cannot be read
    assert cache.lookup(keys[2]) is None and not cache.path(keys[2]).exists()
    assert f"cache entry {cache.path(keys[2])} cannot be read (IsADirectoryError" in capsys.readouterr().err


def test_an_entry_written_before_digests_is_checked_then_given_its_digest(tmp_path, capsys):
    cache = ContentStore(tmp_path, GENERATION_SCHEMA)
    keys = [cache_key({"n": n}) for n in range(2)]
    cache.write(pl.concat([story_entry(key, 50, n) for n, key in enumerate(keys)]))
    for key in keys:
        cache.digest_path(key).unlink()  # as the cache was before this change
    cache.path(keys[1]).write_bytes(cache.path(keys[1]).read_bytes()[:-30])  # and one of them damaged
    assert cache.lookup(keys[0])["cache_key"][0] == keys[0]
    import hashlib

    digest = hashlib.sha256(cache.path(keys[0]).read_bytes()).hexdigest()
    assert cache.digest_path(keys[0]).read_text() == f"{digest}  {keys[0]}.parquet\n"  # as sha256sum writes it
    assert cache.lookup(keys[1]) is None  # a damaged legacy entry is still caught by the reader and moved aside
    assert f"cache entry {cache.path(keys[1])} cannot be read" in capsys.readouterr().err
    data = bytearray(cache.path(keys[0]).read_bytes())
    data[len(data) // 2] ^= 4
    cache.path(keys[0]).write_bytes(bytes(data))
    assert cache.lookup(keys[0]) is None  # adopted: digest-checked from then on


def test_a_write_killed_between_digest_and_entry_never_leaves_an_entry_that_looks_valid(tmp_path, monkeypatch):
    import tempcreativity.cache as cache_module

    cache = ContentStore(tmp_path, GENERATION_SCHEMA)
    key = cache_key({"n": 1})
    cache.write(story_entry(key, 30, 0))

    def killed(*_):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(cache_module, "write_bytes_atomic", killed)
    with pytest.raises(KeyboardInterrupt):
        cache.write(story_entry(key, 30, 1))  # the same key again, other bytes: killed after its digest
    with pytest.raises(KeyboardInterrupt):
        cache.write(story_entry(cache_key({"n": 2}), 30, 2))  # a new key: killed before its entry existed
    monkeypatch.undo()
    assert cache.lookup(key) is None  # the old entry under the new digest: refused, computed again
    assert cache.lookup(cache_key({"n": 2})) is None and not cache.path(cache_key({"n": 2})).exists()
    rows, missing = cache.fill([key], lambda keys: story_entry(keys[0], 30, 1))
    assert missing == [key] and rows.equals(story_entry(key, 30, 1))
