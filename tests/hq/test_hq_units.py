"""The small parts: replay cache bounds, audit coalescing, durations, database URLs."""

from __future__ import annotations

import time

import pytest

from hq.audit_log import OVERFLOW_ACTION, AuditBuffer
from hq.auth import ReplayCache
from hq.settings import Settings, normalize_db_url
from hq.timefmt import iso, parse_duration, parse_since


def test_replay_cache_refuses_a_nonce_twice_per_device() -> None:
    cache = ReplayCache(window_s=300, max_entries=100)
    now = time.time()
    assert cache.add("d1", "nonce-1", timestamp=int(now), now=now)
    assert not cache.add("d1", "nonce-1", timestamp=int(now), now=now)
    assert not cache.add("d1", "nonce-1", timestamp=int(now) - 5, now=now)  # under another stamp too
    assert cache.add("d2", "nonce-1", timestamp=int(now), now=now)


def test_replay_cache_forgets_nonces_once_their_timestamp_left_the_window() -> None:
    cache = ReplayCache(window_s=300, max_entries=100)
    now = 1_000_000.0
    assert cache.add("d1", "n", timestamp=int(now), now=now)
    assert len(cache) == 1
    assert cache.add("d1", "other", timestamp=int(now) + 301, now=now + 301)
    assert len(cache) == 1  # the first expired: the timestamp window refuses it anyway


def test_full_replay_cache_raises_its_horizon_instead_of_forgetting_silently() -> None:
    cache = ReplayCache(window_s=300, max_entries=3)
    now = 1_000_000.0
    for second in range(4):
        assert cache.add("d1", f"n{second}", timestamp=int(now) + second, now=now)
    assert len(cache) == 3
    # The oldest second was dropped: a request stamped then can no longer be judged, so it is refused.
    assert not cache.add("d1", "fresh", timestamp=int(now), now=now)
    assert cache.add("d1", "fresh", timestamp=int(now) + 4, now=now)


def test_audit_buffer_coalesces_identical_records() -> None:
    buffer = AuditBuffer(max_entries=10)
    for n in range(50):
        buffer.add(action="signed_request", outcome="denied", reason="bad_signature", device_id="d1",
                   remote_addr="10.0.0.1", path="/v1/heartbeat", now=1000.0 + n)
    buffer.add(action="signed_request", outcome="denied", reason="replayed", device_id="d1", now=1000.0)
    rows = buffer.drain()
    assert [(r["reason"], r["count"]) for r in rows] == [("bad_signature", 50), ("replayed", 1)]
    assert rows[0]["at"] == 1000.0 and rows[0]["last_at"] == 1049.0
    assert buffer.drain() == []


def test_audit_buffer_is_bounded_and_counts_what_it_drops() -> None:
    buffer = AuditBuffer(max_entries=5)
    for n in range(105):
        buffer.add(action="signed_request", outcome="denied", reason="unknown_device", device_id=f"dev-{n}", now=1.0)
    rows = buffer.drain()
    assert len(rows) == 6
    assert rows[-1]["action"] == OVERFLOW_ACTION
    assert rows[-1]["count"] == 100


def test_audit_buffer_clips_attacker_controlled_fields() -> None:
    buffer = AuditBuffer(max_entries=5)
    buffer.add(action="a", outcome="denied", device_id="x" * 500, path="/" + "p" * 900, detail="d" * 5000, now=1.0)
    [row] = buffer.drain()
    assert len(row["device_id"]) == 64 and len(row["path"]) == 255 and len(row["detail"]) == 1000


@pytest.mark.parametrize(("text", "seconds"), [("24h", 86400), ("90m", 5400), ("3600s", 3600), ("7d", 604800),
                                               ("45", 45), ("1.5h", 5400), ("2w", 1209600)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "0", "5y", "-5m", "h"])
def test_bad_durations_say_what_was_expected(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_since_takes_iso_times_and_durations() -> None:
    now = 2_000_000_000.0
    assert parse_since("2h", now=now) == now - 7200
    assert parse_since("2033-05-18T03:33:20Z", now=now) == 2_000_000_000.0
    assert parse_since("2033-05-18T11:33:20+08:00", now=now) == 2_000_000_000.0
    with pytest.raises(ValueError, match="ISO"):
        parse_since("tuesday", now=now)
    assert iso(2_000_000_000.0) == "2033-05-18T03:33:20Z"
    assert iso(None) is None


def test_postgres_urls_use_psycopg3() -> None:
    assert normalize_db_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_db_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_db_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_db_url("sqlite:///x.db") == "sqlite:///x.db"


def test_silence_period_follows_the_threshold(tmp_path: object) -> None:
    assert Settings(db_url="sqlite://", data_dir=tmp_path, silent_after_s=60).silence_period_s == 5.0  # type: ignore[arg-type]
    assert Settings(db_url="sqlite://", data_dir=tmp_path, silent_after_s=1).silence_period_s == 0.25  # type: ignore[arg-type]
