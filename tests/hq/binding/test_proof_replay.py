"""The proof replay cache saved at a clean stop and taken back at the next start (hq/binding/proof_replay.py)."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest

from hq.auth import ReplayCache
from hq.binding import proof_replay
from hq.binding.proof_replay import REPLAY_FILE, replay_key

NOW = 1_800_000_000.0
SESSION_KEY = bytes(range(32))


def fresh_cache(session_key: bytes = SESSION_KEY) -> ReplayCache:
    return ReplayCache(window_s=600, max_entries=1000, key=replay_key(session_key))


def test_what_one_process_saw_is_refused_by_the_next(tmp_path: Path) -> None:
    before = fresh_cache()
    assert before.add("dev-1", "jti-aaaaaaaaaaaaaaaa", timestamp=int(NOW) - 30, now=NOW)
    assert before.add("dev-2", "jti-bbbbbbbbbbbbbbbb", timestamp=int(NOW) - 900, now=NOW - 400)  # expired by NOW
    assert proof_replay.save(before, tmp_path, NOW) == 1
    path = tmp_path / REPLAY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "jti-" not in path.read_text("ascii")  # digests only, never a proof's jti

    after = fresh_cache()
    assert proof_replay.load(after, tmp_path, NOW + 5) == 1
    assert not path.exists()
    assert not after.add("dev-1", "jti-aaaaaaaaaaaaaaaa", timestamp=int(NOW) - 30, now=NOW + 5)
    assert after.add("dev-1", "jti-cccccccccccccccc", timestamp=int(NOW), now=NOW + 5)


def test_another_session_key_does_not_recognise_the_saved_proofs(tmp_path: Path) -> None:
    before = fresh_cache()
    before.add("dev-1", "jti-aaaaaaaaaaaaaaaa", timestamp=int(NOW), now=NOW)
    proof_replay.save(before, tmp_path, NOW)
    other = fresh_cache(bytes(32))
    proof_replay.load(other, tmp_path, NOW)
    assert other.add("dev-1", "jti-aaaaaaaaaaaaaaaa", timestamp=int(NOW), now=NOW)


def test_a_second_process_stopping_later_keeps_what_the_first_saved(tmp_path: Path) -> None:
    serving, console = fresh_cache(), fresh_cache()
    serving.add("dev-1", "jti-aaaaaaaaaaaaaaaa", timestamp=int(NOW), now=NOW)
    proof_replay.save(serving, tmp_path, NOW)
    console.add("dev-2", "jti-bbbbbbbbbbbbbbbb", timestamp=int(NOW), now=NOW)
    assert proof_replay.save(console, tmp_path, NOW + 1) == 2
    restarted = fresh_cache()
    proof_replay.load(restarted, tmp_path, NOW + 2)
    assert not restarted.add("dev-1", "jti-aaaaaaaaaaaaaaaa", timestamp=int(NOW), now=NOW + 2)
    assert not restarted.add("dev-2", "jti-bbbbbbbbbbbbbbbb", timestamp=int(NOW), now=NOW + 2)


@pytest.mark.parametrize("content", [
    b"not json", b"[]", b'{"format": 2, "buckets": []}', b'{"format": 1, "buckets": {}}',
    b'{"format": 1, "buckets": [[1, [-1]]]}', b'{"format": 1, "buckets": [[true, [1]]]}',
    json.dumps({"format": 1, "buckets": [[1, [1 << 64]]]}).encode(),
], ids=["text", "list", "format", "buckets-object", "negative-key", "bool-second", "key-too-big"])
def test_a_damaged_file_is_logged_ignored_and_removed(tmp_path: Path, content: bytes,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / REPLAY_FILE).write_bytes(content)
    cache = fresh_cache()
    with caplog.at_level(logging.WARNING, logger="hq.binding.proof_replay"):
        assert proof_replay.load(cache, tmp_path, NOW) == 0
    assert f"{REPLAY_FILE}: ignored" in caplog.text
    assert not (tmp_path / REPLAY_FILE).exists()
    assert cache.add("dev-1", "jti-aaaaaaaaaaaaaaaa", timestamp=int(NOW), now=NOW)


def test_restore_respects_the_bound_of_the_cache() -> None:
    key = replay_key(SESSION_KEY)
    small = ReplayCache(window_s=600, max_entries=2, key=key)
    buckets = [(int(NOW) - 3, [key("d", "a")]), (int(NOW) - 2, [key("d", "b")]), (int(NOW) - 1, [key("d", "c")])]
    assert small.restore(buckets, NOW) == 2
    # The oldest second was dropped and became the horizon: a proof stamped then is refused.
    assert not small.add("d", "fresh", timestamp=int(NOW) - 3, now=NOW)
