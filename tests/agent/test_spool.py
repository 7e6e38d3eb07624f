"""The spool: ordering, idempotence, bounds and loss counting, durability across processes and kill -9."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.events import PRIORITY_CRITICAL, PRIORITY_HIGH, PRIORITY_LOW, PRIORITY_MEDIUM, Event
from agent.spool import Spool, SpoolError, stored_size

NOW = 1_700_000_000.0
DAY = 86400.0


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_event(priority: int = PRIORITY_MEDIUM, created: float = NOW, n: int = 0, pad: int = 0) -> Event:
    # Same-shaped bodies give same-sized events, which keeps the byte arithmetic below exact.
    return Event(kind="test.event", body={"n": f"{n:06d}", "pad": "x" * pad}, priority=priority, created=created)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def spool(tmp_path: Path, clock: FakeClock) -> Iterator[Spool]:
    with Spool(tmp_path / "spool.db", clock=clock) as opened:
        yield opened


def cap_file_at_current_size(spool: Spool) -> None:
    """Make every further growth of the file fail with SQLite's real SQLITE_FULL ("database or disk is full").

    max_page_count is a per-connection limit, so it has to be set on the spool's own connection.
    """
    conn = spool._conn
    assert conn is not None
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.execute(f"PRAGMA max_page_count = {pages}")


def lift_file_cap(spool: Spool) -> None:
    assert spool._conn is not None
    spool._conn.execute("PRAGMA max_page_count = 1073741823")


# -- ordering, idempotence, ack -------------------------------------------------------------------


def test_peek_returns_highest_priority_first_then_insertion_order(spool: Spool) -> None:
    priorities = [PRIORITY_MEDIUM, PRIORITY_CRITICAL, PRIORITY_LOW, PRIORITY_CRITICAL, PRIORITY_MEDIUM, PRIORITY_HIGH]
    events = [make_event(priority=p, n=i, created=NOW - i) for i, p in enumerate(priorities)]
    spool.put_many(events[:3])
    for event in events[3:]:
        spool.put(event)

    peeked = spool.peek(10)

    assert [e.body["n"] for e in peeked] == ["000001", "000003", "000005", "000000", "000004", "000002"]


def test_peek_returns_whole_events_without_removing_them(spool: Spool) -> None:
    events = [make_event(n=i) for i in range(5)]
    spool.put_many(events)

    assert spool.peek(3) == events[:3]
    assert spool.peek(10) == events
    assert spool.peek(0) == []
    assert spool.depth() == 5


def test_putting_an_id_that_is_already_stored_is_ignored(spool: Spool) -> None:
    event = make_event(n=1)
    spool.put(event)
    spool.put(event)
    spool.put_many([event, make_event(n=2), event])

    assert spool.depth() == 2
    assert [e.body["n"] for e in spool.peek(10)] == ["000001", "000002"]
    assert spool.size_bytes() == stored_size(event) + stored_size(make_event(n=2))
    assert spool.losses() == {}


def test_ack_deletes_delivered_ids_and_ignores_unknown_ones(spool: Spool) -> None:
    events = [make_event(n=i) for i in range(4)]
    spool.put_many(events)

    spool.ack([events[0].id, events[2].id, "no-such-id"])
    spool.ack([])

    assert spool.peek(10) == [events[1], events[3]]
    assert spool.depth() == 2
    assert spool.size_bytes() == stored_size(events[1]) + stored_size(events[3])


def test_ack_refuses_a_bare_string_instead_of_deleting_by_characters(spool: Spool) -> None:
    with pytest.raises(TypeError, match="sequence of event ids"):
        spool.ack("0190")


def test_invalid_event_in_a_batch_stores_nothing_of_that_batch(spool: Spool) -> None:
    good = make_event(n=1)
    bad_priority = Event(kind="test.event", body={}, priority=7)
    not_json = Event(kind="test.event", body={"when": object()})

    with pytest.raises(ValueError, match=rf"event {bad_priority.id}: priority must be 0..3, got 7"):
        spool.put_many([good, bad_priority])
    with pytest.raises(ValueError, match="body is not plain JSON"):
        spool.put_many([good, not_json])

    assert spool.depth() == 0


def test_a_name_that_is_not_utf8_is_stored_as_a_visible_escape_in_values_and_keys(spool: Spool) -> None:
    # os.fsdecode(b"\xff\xfe") is how Python hands over a file name from a USB stick written elsewhere.
    name = "/home/clerk/Downloads/bad-" + os.fsdecode(b"\xff\xfe") + ".csv"
    event = Event(kind="finding", body={"file.path": name, "paths": [name, {name: 1}], "rows": 3})

    spool.put(event)

    (stored,) = spool.peek(10)
    escaped = "/home/clerk/Downloads/bad-\\udcff\\udcfe.csv"
    assert stored.body == {"file.path": escaped, "paths": [escaped, {escaped: 1}], "rows": 3}
    assert spool.losses() == {}


# -- bounds and losses ----------------------------------------------------------------------------


def test_full_spool_drops_oldest_lowest_priority_first(tmp_path: Path, clock: FakeClock) -> None:
    unit = stored_size(make_event())
    spool = Spool(tmp_path / "spool.db", max_bytes=6 * unit, clock=clock)
    low = [make_event(PRIORITY_LOW, created=NOW - 60 + i, n=i) for i in range(3)]
    medium = make_event(PRIORITY_MEDIUM, created=NOW - 100, n=10)
    high = [make_event(PRIORITY_HIGH, created=NOW - 200 + i, n=20 + i) for i in range(2)]
    spool.put_many([low[1], high[0], low[0], medium, low[2], high[1]])
    assert spool.size_bytes() == 6 * unit and spool.losses() == {}

    spool.put(make_event(PRIORITY_MEDIUM, n=11))
    # Oldest by creation time, not by insertion: low[0] was put after low[1] but created earlier.
    assert low[0].id not in {e.id for e in spool.peek(10)}
    assert spool.losses() == {"spool_full": 1}

    spool.put_many([make_event(PRIORITY_CRITICAL, n=30 + i) for i in range(3)])

    remaining = {e.body["n"] for e in spool.peek(10)}
    assert remaining == {"000020", "000021", "000011", "000030", "000031", "000032"}
    assert spool.losses() == {"spool_full": 4}
    assert spool.size_bytes() == 6 * unit
    spool.close()


def test_new_low_priority_event_is_the_one_dropped_when_everything_else_outranks_it(
    tmp_path: Path, clock: FakeClock
) -> None:
    unit = stored_size(make_event())
    spool = Spool(tmp_path / "spool.db", max_bytes=2 * unit, clock=clock)
    critical = [make_event(PRIORITY_CRITICAL, n=i) for i in range(2)]
    spool.put_many(critical)

    spool.put(make_event(PRIORITY_LOW, created=NOW + 10, n=9))

    assert spool.peek(10) == critical
    assert spool.losses() == {"spool_full": 1}
    spool.close()


def test_event_larger_than_the_whole_bound_is_refused_and_counted(tmp_path: Path, clock: FakeClock) -> None:
    spool = Spool(tmp_path / "spool.db", max_bytes=1000, clock=clock)
    small = make_event(n=1)
    huge = make_event(n=2, pad=2000)

    spool.put_many([small, huge])

    assert spool.peek(10) == [small]
    assert spool.losses() == {"spool_full": 1}
    spool.close()


def test_events_older_than_max_age_are_purged_on_put_and_counted_as_expired(
    tmp_path: Path, clock: FakeClock
) -> None:
    spool = Spool(tmp_path / "spool.db", max_age_s=7 * DAY, clock=clock)
    stale = [make_event(created=NOW - 8 * DAY, n=i) for i in range(2)]
    spool.put_many([*stale, make_event(created=NOW - 6 * DAY, n=5)])

    assert [e.body["n"] for e in spool.peek(10)] == ["000005"]
    assert spool.losses() == {"expired": 2}
    assert spool.depth() == 1
    spool.close()


def test_events_that_age_past_max_age_while_waiting_are_purged_on_peek(spool: Spool, clock: FakeClock) -> None:
    spool.put_many([make_event(n=i) for i in range(3)])
    clock.now += 7 * DAY - 1
    assert len(spool.peek(10)) == 3

    clock.now += 2

    assert spool.peek(10) == []
    assert spool.depth() == 0
    assert spool.size_bytes() == 0
    assert spool.losses() == {"expired": 3}


def test_losses_are_totals_that_only_grow_and_count_losses_adds_a_reason(
    tmp_path: Path, clock: FakeClock
) -> None:
    # Totals, not "since the last report": a heartbeat HQ stored twice cannot count a loss twice.
    spool = Spool(tmp_path / "spool.db", max_bytes=1000, clock=clock)
    spool.put_many([make_event(pad=2000, n=i) for i in range(2)])
    assert spool.losses() == {"spool_full": 2}
    spool.put_many([make_event(pad=2000, n=i) for i in range(3)])
    spool.count_losses({"too_large": 1})
    assert spool.losses() == {"spool_full": 5, "too_large": 1}
    spool.close()
    assert Spool(tmp_path / "spool.db", max_bytes=1000, clock=clock).losses() == {"spool_full": 5, "too_large": 1}


# -- persistence and files ------------------------------------------------------------------------


def test_events_and_losses_survive_closing_and_reopening(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "spool.db"
    events = [make_event(priority=i % 4, n=i, created=NOW - i) for i in range(8)]
    with Spool(path, clock=clock) as first:
        first.put_many(events)
        first.put(make_event(created=NOW - 30 * DAY))
        first.ack([events[0].id])
        expected = first.peek(100)
        size = first.size_bytes()

    with Spool(path, clock=clock) as second:
        assert second.peek(100) == expected
        assert len(expected) == 7
        assert second.size_bytes() == size
        assert second.losses() == {"expired": 1}
        second.put(make_event(priority=PRIORITY_CRITICAL, n=99))
        # Insertion order carries on across the reopen: the new event queues behind older criticals.
        assert [e.body["n"] for e in second.peek(3)] == ["000003", "000007", "000099"]


def test_spool_creates_its_directory_and_keeps_its_files_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "new" / "nested" / "spool.db"
    with Spool(path) as spool:
        spool.put(make_event())
        files = sorted(p.name for p in path.parent.iterdir())
        modes = {name: (path.parent / name).stat().st_mode & 0o777 for name in files}

    assert "spool.db" in files and "spool.db-wal" in files
    assert set(modes.values()) == {0o600}, modes


def test_spool_uses_wal_with_full_sync_and_a_busy_timeout(spool: Spool) -> None:
    conn = spool._conn
    assert conn is not None
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_a_file_that_is_not_sqlite_is_refused_with_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    path.write_text("this is a text file left here by someone else\n" * 100)

    with pytest.raises(SpoolError, match=rf"^{path}: not a usable spool database \(file is not a database\)"):
        Spool(path)


def test_a_corrupt_spool_is_refused_with_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        spool.put_many([make_event(n=i, pad=200) for i in range(2000)])
    page_size = 4096
    with path.open("r+b") as raw:
        raw.seek(3 * page_size)
        raw.write(os.urandom(20 * page_size))

    with pytest.raises(SpoolError, match=rf"^{path}: (spool database is corrupt|not a usable spool database)"):
        Spool(path)


def test_an_sqlite_database_of_another_application_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE customers (phone TEXT)")
    other.commit()
    other.close()

    with pytest.raises(SpoolError, match=rf"^{path}: is an SQLite database of another application"):
        Spool(path)


def test_closed_spool_says_so(spool: Spool) -> None:
    spool.close()
    spool.close()
    with pytest.raises(SpoolError, match="spool is closed"):
        spool.put(make_event())


# -- disk full ------------------------------------------------------------------------------------


def test_full_disk_counts_events_as_disk_full_without_raising(
    spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    kept = make_event(n=1)
    spool.put(kept)
    cap_file_at_current_size(spool)

    with caplog.at_level(logging.WARNING, logger="agent.spool"):
        for batch in range(5):
            spool.put_many([make_event(n=100 * batch + i, pad=1000) for i in range(20)])
        # Larger than a page, so it cannot squeeze into free space left in an existing page.
        spool.put(make_event(n=999, pad=5000))

    assert spool.losses() == {"disk_full": 101}
    assert spool.peek(10) == [kept]
    warnings = [r for r in caplog.records if "database or disk is full" in r.getMessage()]
    assert len(warnings) == 1, "one warning per episode, not one per failed put"


def test_spool_keeps_working_and_records_disk_full_losses_when_space_returns(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(path, clock=clock)
    cap_file_at_current_size(spool)
    spool.put_many([make_event(n=i, pad=1000) for i in range(30)])
    assert spool.depth() == 0

    lift_file_cap(spool)
    after = make_event(n=500)
    spool.put(after)
    spool.close()

    with Spool(path, clock=clock) as reopened:
        assert reopened.peek(10) == [after]
        assert reopened.losses() == {"disk_full": 30}


def test_acking_delivered_events_frees_room_on_a_full_disk(spool: Spool) -> None:
    delivered = [make_event(n=i, pad=1000) for i in range(40)]
    spool.put_many(delivered)
    cap_file_at_current_size(spool)
    spool.put_many([make_event(n=100 + i, pad=1000) for i in range(40)])
    assert spool.losses() == {"disk_full": 40}

    spool.ack([e.id for e in delivered])
    later = [make_event(n=200 + i, pad=1000) for i in range(20)]
    spool.put_many(later)

    assert spool.peek(100) == later


def test_losses_counted_while_the_disk_is_full_are_kept_in_memory_then_written(spool: Spool) -> None:
    cap_file_at_current_size(spool)
    spool.put_many([make_event(n=i, pad=1000) for i in range(10)])
    spool.count_losses({"too_large": 1})
    assert spool.losses() == {"disk_full": 10, "too_large": 1}
    lift_file_cap(spool)
    spool.put(make_event(n=99))
    assert spool.losses() == {"disk_full": 10, "too_large": 1}
    assert Spool(spool.path).losses() == {"disk_full": 10, "too_large": 1}, "written by the next good write"


def test_opening_an_existing_spool_writes_nothing_so_status_works_on_a_full_disk(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    Spool(path).close()  # closing the last connection checkpoints and removes the WAL

    with Spool(path) as reopened:
        # Any write (schema, PRAGMA application_id) would have appended frames to the WAL.
        assert os.path.getsize(f"{path}-wal") == 0
        assert reopened.depth() == 0


# -- concurrency and crashes ----------------------------------------------------------------------

WRITER = """
import sys
from pathlib import Path
from agent.events import Event
from agent.spool import Spool

path, name, total, batch = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
spool = Spool(path)
for start in range(0, total, batch):
    if start == total // 2:
        # Hold the connection open, half done, until the other process has peeked and acked.
        print("paused", flush=True)
        sys.stdin.readline()
    spool.put_many(
        Event(kind="test.mp", body={"i": i}, id=f"{name}-{i:06d}", priority=i % 4)
        for i in range(start, min(total, start + batch))
    )
print(sorted(spool.losses().items()), flush=True)
spool.close()
"""


def test_threads_sharing_one_spool_lose_nothing(spool: Spool) -> None:
    def writer(name: str) -> None:
        for i in range(100):
            spool.put(Event(kind="test.thread", body={"i": i}, id=f"{name}-{i:04d}", created=NOW))

    threads = [threading.Thread(target=writer, args=(f"t{n}",), name=f"writer-{n}") for n in range(4)]
    for thread in threads:
        thread.start()
    delivered: list[str] = []
    while any(t.is_alive() for t in threads) or spool.depth():
        batch = spool.peek(25)
        spool.ack([e.id for e in batch])
        delivered.extend(e.id for e in batch)
    for thread in threads:
        thread.join()

    assert sorted(delivered) == sorted(f"t{n}-{i:04d}" for n in range(4) for i in range(100))
    assert spool.losses() == {}


def deliver(spool: Spool, delivered: Counter[str], until: int, seconds: float) -> None:
    """Peek and ack like the uplink until `until` distinct events were seen or time runs out."""
    deadline = time.monotonic() + seconds
    while len(delivered) < until and time.monotonic() < deadline:
        events = spool.peek(50)
        spool.ack([e.id for e in events])
        delivered.update(e.id for e in events)


@pytest.mark.timeout(120)
def test_other_processes_put_while_this_one_peeks_and_acks(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "spool.db"
    total, batch = 1500, 10
    spool = Spool(path)
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"w{n}", str(total), str(batch)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for n in range(2)
    ]
    assert all(w.stdout is not None and w.stdout.readline() == "paused\n" for w in writers)
    delivered: Counter[str] = Counter()

    deliver(spool, delivered, until=total, seconds=60)
    assert len(delivered) == total, "first halves of both writers delivered while they hold the file open"
    assert [w.poll() for w in writers] == [None, None]
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.close()
    # Second halves: both writers and this process contend for the write lock at the same time.
    deliver(spool, delivered, until=2 * total, seconds=60)
    outputs = [w.stdout.read() if w.stdout else "" for w in writers]

    assert [w.wait(timeout=30) for w in writers] == [0, 0]
    assert outputs == ["[]\n", "[]\n"], "writers counted losses (busy or full)"
    assert set(delivered) == {f"w{n}-{i:06d}" for n in range(2) for i in range(total)}
    assert max(delivered.values()) == 1
    assert spool.depth() == 0 and spool.size_bytes() == 0
    assert spool.losses() == {}
    spool.close()


CRASHER = """
import os, sys, random
from pathlib import Path
from agent.events import Event
from agent.spool import Spool

spool = Spool(Path(sys.argv[1]), max_bytes=2**30)
rng = random.Random(os.getpid())
n = 0
while True:
    tag = f"{os.getpid()}-{n}"
    # Large batches, so most of a put_many is spent inserting rather than in the final fsync (a kill
    # during that fsync leaves the batch committed: the WAL frames are already in the page cache).
    count = rng.randint(200, 1500)
    print("begin", tag, flush=True)
    spool.put_many(
        Event(kind="test.crash", body={"batch": tag, "count": count, "pad": "p" * rng.randint(0, 300)})
        for _ in range(count)
    )
    n += 1
"""


def run_and_kill(path: Path, delay: float) -> str:
    """Run the crasher until its first batch is committed, let it go on, SIGKILL it; return the batch
    tag it announced last (the put_many that was under way when the signal landed)."""
    child = subprocess.Popen([sys.executable, "-c", CRASHER, str(path)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().startswith("begin ")
    assert child.stdout.readline().startswith("begin "), "the first batch never committed"
    time.sleep(delay)
    os.kill(child.pid, signal.SIGKILL)
    lines = child.stdout.read().split()
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    return lines[-1]


def _absent_batches(path: Path, tags: list[str]) -> list[str]:
    conn = sqlite3.connect(path)
    present = {tag for (tag,) in conn.execute("SELECT DISTINCT json_extract(body, '$.batch') FROM events")}
    conn.close()
    return [tag for tag in tags if tag not in present]


@pytest.mark.timeout(120)
def test_kill_9_during_put_many_leaves_only_whole_batches(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    interrupted: list[str] = []
    while len(interrupted) < 3 or (len(interrupted) < 10 and not _absent_batches(path, interrupted)):
        interrupted.append(run_and_kill(path, delay=0.1 + 0.05 * len(interrupted)))

    check = sqlite3.connect(path)
    assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    rows = check.execute("SELECT body, size FROM events").fetchall()
    totals = check.execute("SELECT events, bytes FROM totals").fetchone()
    check.close()

    bodies = [json.loads(body) for body, _ in rows]
    per_batch = Counter(body["batch"] for body in bodies)
    declared = {body["batch"]: body["count"] for body in bodies}
    partial = {tag: (n, declared[tag]) for tag, n in per_batch.items() if n != declared[tag]}
    assert partial == {}
    assert len(per_batch) >= len(interrupted), "each round committed at least its first batch before the kill"
    # At least one kill landed inside a put_many before its commit: that batch is absent as a whole.
    assert any(tag not in per_batch for tag in interrupted), interrupted
    assert totals == (len(rows), sum(size for _, size in rows)), "running totals drifted from the rows"

    with Spool(path) as reopened:
        assert reopened.depth() == len(rows)
        reopened.put(Event(kind="test.crash", body={"batch": "after", "count": 1}))
        assert reopened.depth() == len(rows) + 1


HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
"""


def test_opening_a_spool_another_process_holds_locked_says_it_is_locked(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    Spool(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdin is not None and holder.stdout is not None
    assert holder.stdout.readline() == "locked\n"
    try:
        with pytest.raises(SpoolError, match=rf"^{path}: spool is locked by another process"):
            Spool(path, busy_timeout_s=0.2)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_put_blocked_by_another_process_past_the_busy_timeout_counts_spool_busy(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(path, busy_timeout_s=0.2)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdin is not None and holder.stdout is not None
    assert holder.stdout.readline() == "locked\n"
    try:
        spool.put_many([make_event(n=i) for i in range(3)])
        assert spool.losses() == {"spool_busy": 3}
        assert spool.peek(10) == [], "readers are not blocked by the writer in WAL mode"
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)

    later = make_event(created=time.time())
    spool.put(later)
    assert spool.peek(10) == [later]
    spool.close()
