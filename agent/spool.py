"""The agent's durable outbox: every event is written here first, the uplink reads only from here.

Modelled on osquery's BufferedLogForwarder: results go to a local store, are sent later, and are
deleted only when HQ confirms them; past a bound the oldest are purged with a counted warning.

Storage is one SQLite file in WAL mode with ``synchronous=FULL``, so a committed put survives a
power cut, and a ``busy_timeout`` so several processes can share the file (the agent peeks and
acks while another process puts). Every put is one transaction: after ``kill -9`` a batch is
either wholly there or wholly absent.

Every event that is dropped is counted by reason and the counts are kept in the same file, so a
restart does not forget them. The counts only grow: each heartbeat reports the totals and HQ keeps
the latest, so a heartbeat sent twice (HQ stored it, its answer was lost) cannot count a loss twice,
and one that never arrives loses nothing (the next carries the same totals). Reasons:

- ``spool_full``: evicted (lowest priority, oldest first) to stay under ``max_bytes``, or one
  event larger than ``max_bytes`` on its own;
- ``expired``: older than ``max_age_s`` and never delivered;
- ``disk_full``: the write itself failed (disk full, I/O error); counted in memory because the
  disk cannot take the count either, and moved into the file by the next write that succeeds;
- ``spool_busy``: another process held the file longer than the busy timeout;
- any reason a caller counts with ``count_losses`` (the uplink: ``too_large``, one event HQ refuses
  even alone).

``max_bytes`` bounds the events' payload (see ``stored_size``), not the file: pages, indexes and
the WAL add to it, and freed pages are reused rather than returned to the filesystem.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

from agent.events import MAX_KIND_LENGTH, PRIORITY_CRITICAL, PRIORITY_LOW, Event
from agent.utf8 import utf8_safe_tree

log = logging.getLogger(__name__)

LOSS_SPOOL_FULL = "spool_full"
LOSS_EXPIRED = "expired"
LOSS_DISK_FULL = "disk_full"
LOSS_BUSY = "spool_busy"

DEFAULT_MAX_BYTES = 64 * 2**20
DEFAULT_MAX_AGE_S = 7 * 86400.0
BUSY_TIMEOUT_S = 10.0
PRIORITIES = tuple(range(PRIORITY_LOW, PRIORITY_CRITICAL + 1))

# Marks the file as ours, so a path pointing at some other application's database is refused
# instead of being written into.
APPLICATION_ID = 0x54475350  # "TGSP"
SCHEMA_VERSION = 1

# Per-event bookkeeping (seq, priority, created, size) counted on top of id, kind and body.
ROW_OVERHEAD = 32

# Primary SQLite result codes (an extended code carries the primary one in its low byte).
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_IOERR = 10
_SQLITE_FULL = 13

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS events (
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        priority INTEGER NOT NULL,
        created REAL NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        size INTEGER NOT NULL
    )""",
    # peek: highest priority first, then insertion order.
    "CREATE INDEX IF NOT EXISTS events_delivery ON events (priority DESC, seq)",
    # eviction (lowest priority, oldest first) and expiry (priority IN (...) AND created < cutoff).
    "CREATE INDEX IF NOT EXISTS events_eviction ON events (priority, created)",
    """CREATE TABLE IF NOT EXISTS totals (
        one INTEGER PRIMARY KEY CHECK (one = 1),
        events INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        next_seq INTEGER NOT NULL
    )""",
    "INSERT OR IGNORE INTO totals (one, events, bytes, next_seq) VALUES (1, 0, 0, 0)",
    "CREATE TABLE IF NOT EXISTS losses (reason TEXT PRIMARY KEY, count INTEGER NOT NULL)",
    # Triggers keep the totals exact in the same transaction as the change itself, whoever
    # inserts or deletes, so size and depth never need a scan of the table.
    """CREATE TRIGGER IF NOT EXISTS events_added AFTER INSERT ON events BEGIN
        UPDATE totals SET events = events + 1, bytes = bytes + NEW.size;
    END""",
    """CREATE TRIGGER IF NOT EXISTS events_removed AFTER DELETE ON events BEGIN
        UPDATE totals SET events = events - 1, bytes = bytes - OLD.size;
    END""",
)
_OUR_TABLES = {"events", "totals", "losses"}

_PRIORITY_LIST = ", ".join(str(p) for p in PRIORITIES)
_SQL_INSERT = (
    "INSERT INTO events (id, seq, priority, created, kind, body, size) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO NOTHING"
)
# "priority IN (...)" lets SQLite seek the eviction index once per priority instead of scanning.
# The list is built from integer constants, never from input (hence the S608 waivers).
_SQL_EXPIRED_ANY = f"SELECT 1 FROM events WHERE priority IN ({_PRIORITY_LIST}) AND created < ? LIMIT 1"  # noqa: S608
_SQL_EXPIRE = f"DELETE FROM events WHERE priority IN ({_PRIORITY_LIST}) AND created < ?"  # noqa: S608
_SQL_EVICTION_ORDER = "SELECT id, size FROM events ORDER BY priority, created"
_SQL_PEEK = (
    "SELECT id, priority, created, kind, body FROM events WHERE created >= ? "
    "ORDER BY priority DESC, seq LIMIT ?"
)
_SQL_ADD_LOSS = (
    "INSERT INTO losses (reason, count) VALUES (?, ?) "
    "ON CONFLICT (reason) DO UPDATE SET count = count + excluded.count"
)


class SpoolError(RuntimeError):
    """The spool file cannot be used: not a database, corrupt, someone else's, or closed."""


class _Row(NamedTuple):
    id: str
    priority: int
    created: float
    kind: str
    body: str
    size: int


def _encode(event: Event) -> _Row:
    """Validate and serialise before any transaction opens, so a bad event never half-writes a batch."""
    if not isinstance(event, Event):
        raise TypeError(f"spool accepts Event objects, got {type(event).__name__}")
    where = f"event {event.id}"
    if isinstance(event.priority, bool) or event.priority not in PRIORITIES:
        raise ValueError(f"{where}: priority must be {PRIORITY_LOW}..{PRIORITY_CRITICAL}, got {event.priority!r}")
    if not isinstance(event.kind, str) or not 0 < len(event.kind) <= MAX_KIND_LENGTH:
        raise ValueError(f"{where}: kind must be a string of 1..{MAX_KIND_LENGTH} characters")
    if not isinstance(event.created, int | float) or not math.isfinite(event.created):
        raise ValueError(f"{where}: created must be a finite epoch time, got {event.created!r}")
    try:
        body = json.dumps(utf8_safe_tree(event.body), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:  # RecursionError: a body that contains itself
        raise ValueError(f"{where} ({event.kind}): body is not plain JSON: {exc}") from exc
    size = len(body.encode()) + len(event.kind.encode()) + len(event.id.encode()) + ROW_OVERHEAD
    return _Row(event.id, int(event.priority), float(event.created), event.kind, body, size)


def stored_size(event: Event) -> int:
    """The bytes an event counts against ``max_bytes``: its JSON body, kind and id plus bookkeeping."""
    return _encode(event).size


def _loss_reason(exc: BaseException) -> str | None:
    """Which loss a failed write counts as; None means it is not a storage condition but a fault."""
    if isinstance(exc, OSError):
        return LOSS_DISK_FULL
    if not isinstance(exc, sqlite3.Error):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        primary = code & 0xFF
        if primary in (_SQLITE_FULL, _SQLITE_IOERR):
            return LOSS_DISK_FULL
        if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
            return LOSS_BUSY
        return None
    message = str(exc).lower()
    if "disk is full" in message or "disk i/o error" in message:
        return LOSS_DISK_FULL
    if "database is locked" in message:
        return LOSS_BUSY
    return None


class Spool:
    """A bounded, durable, multi-process queue of events with counted losses."""

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        clock: Callable[[], float] = time.time,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        if max_age_s <= 0:
            raise ValueError(f"max_age_s must be positive, got {max_age_s}")
        if busy_timeout_s < 0:
            raise ValueError(f"busy_timeout_s must be zero or more, got {busy_timeout_s}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._clock = clock
        # One connection per Spool, shared by threads under this lock (sqlite3 objects are not
        # safe for concurrent use); other processes are handled by SQLite's own file locks.
        self._lock = threading.RLock()
        # Losses the disk could not take; merged into losses() and flushed by the next good write.
        self._unsaved: Counter[str] = Counter()
        self._failing = False
        self._conn: sqlite3.Connection | None = _open(self.path, busy_timeout_s)

    # -- writing -------------------------------------------------------------------------------

    def put(self, event: Event) -> None:
        """Store one event in its own transaction; never raises for a full or failing disk."""
        self.put_many((event,))

    def put_many(self, events: Iterable[Event]) -> None:
        """Store all events in one transaction (all or none); never raises for a full or failing disk."""
        rows = [_encode(event) for event in events]
        if not rows:
            return
        fitting = [row for row in rows if row.size <= self.max_bytes]
        oversized = len(rows) - len(fitting)
        with self._lock:
            conn = self._connection()
            losses = Counter({LOSS_SPOOL_FULL: oversized}) + self._unsaved
            try:
                with self._write(conn):
                    self._insert(conn, fitting)
                    losses[LOSS_EXPIRED] += self._purge_expired(conn)
                    losses[LOSS_SPOOL_FULL] += self._evict_over_bound(conn)
                    _add_losses(conn, losses)
            except (sqlite3.Error, OSError) as exc:
                self._count_failed_write(exc, {LOSS_SPOOL_FULL: oversized}, len(fitting))
                return
            self._write_succeeded()
        if oversized:
            log.warning("spool %s: refused %d event(s) larger than max_bytes=%d (spool_full)",
                        self.path, oversized, self.max_bytes)
        if losses[LOSS_SPOOL_FULL] > oversized:
            log.warning("spool %s: over max_bytes=%d, evicted %d lowest-priority oldest event(s) (spool_full)",
                        self.path, self.max_bytes, losses[LOSS_SPOOL_FULL] - oversized)

    def _insert(self, conn: sqlite3.Connection, rows: list[_Row]) -> None:
        (next_seq,) = conn.execute("SELECT next_seq FROM totals").fetchone()
        conn.executemany(_SQL_INSERT, (
            (row.id, next_seq + offset, row.priority, row.created, row.kind, row.body, row.size)
            for offset, row in enumerate(rows)
        ))
        conn.execute("UPDATE totals SET next_seq = ?", (next_seq + len(rows),))

    def _purge_expired(self, conn: sqlite3.Connection) -> int:
        return conn.execute(_SQL_EXPIRE, (self._cutoff(),)).rowcount

    def _evict_over_bound(self, conn: sqlite3.Connection) -> int:
        (total,) = conn.execute("SELECT bytes FROM totals").fetchone()
        excess = total - self.max_bytes
        if excess <= 0:
            return 0
        victims: list[tuple[str]] = []
        freed = 0
        cursor = conn.execute(_SQL_EVICTION_ORDER)
        for event_id, size in cursor:
            victims.append((event_id,))
            freed += size
            if freed >= excess:
                break
        cursor.close()
        conn.executemany("DELETE FROM events WHERE id = ?", victims)
        return len(victims)

    def _count_failed_write(self, exc: BaseException, losses: Mapping[str, int], events: int) -> None:
        reason = _loss_reason(exc)
        if reason is None:
            raise SpoolError(f"{self.path}: write failed: {exc}") from exc
        self._unsaved.update({reason: events, **{k: v for k, v in losses.items() if v}})
        if not self._failing:
            log.warning("spool %s: cannot write (%s); counting events as lost (%s) until writes succeed again",
                        self.path, exc, reason)
        self._failing = True

    def _write_succeeded(self) -> None:
        if self._failing:
            log.warning("spool %s: writes succeed again; earlier losses are recorded", self.path)
        self._failing = False
        self._unsaved.clear()

    # -- delivering ----------------------------------------------------------------------------

    def peek(self, limit: int) -> list[Event]:
        """The next batch to deliver, without removing it: priority DESC, then insertion order."""
        if limit < 0:
            raise ValueError(f"limit must be zero or more, got {limit}")
        with self._lock:
            conn = self._connection()
            cutoff = self._cutoff()
            self._purge_expired_on_read(conn, cutoff)
            rows = self._read(conn, "peek", _SQL_PEEK, (cutoff, limit))
        return [self._decode(row) for row in rows]

    def _purge_expired_on_read(self, conn: sqlite3.Connection, cutoff: float) -> None:
        # A cheap indexed probe first, so a peek only takes the write lock when something expired.
        if not self._read(conn, "peek", _SQL_EXPIRED_ANY, (cutoff,)):
            return
        try:
            with self._write(conn):
                expired = conn.execute(_SQL_EXPIRE, (cutoff,)).rowcount
                _add_losses(conn, Counter({LOSS_EXPIRED: expired}) + self._unsaved)
        except (sqlite3.Error, OSError) as exc:
            # The peek query filters expired rows anyway; the purge is retried next time.
            log.warning("spool %s: could not purge expired events: %s", self.path, exc)
            return
        self._write_succeeded()
        if expired:
            log.warning("spool %s: %d event(s) older than %.0f s expired undelivered", self.path,
                        expired, self.max_age_s)

    def _decode(self, row: tuple[str, int, float, str, str]) -> Event:
        event_id, priority, created, kind, body = row
        try:
            return Event(id=event_id, priority=priority, created=created, kind=kind, body=json.loads(body))
        except ValueError as exc:
            raise SpoolError(f"{self.path}: stored event {event_id} is unreadable: {exc}") from exc

    def ack(self, ids: Sequence[str]) -> None:
        """Delete delivered events; unknown ids are ignored. A failed delete only means redelivery."""
        if isinstance(ids, str):
            raise TypeError("ack takes a sequence of event ids, not a single string")
        if not ids:
            return
        with self._lock:
            conn = self._connection()
            try:
                with self._write(conn):
                    conn.executemany("DELETE FROM events WHERE id = ?", ((event_id,) for event_id in ids))
            except (sqlite3.Error, OSError) as exc:
                if _loss_reason(exc) is None:
                    raise SpoolError(f"{self.path}: ack failed: {exc}") from exc
                # HQ is idempotent on ids, so these are simply sent again later.
                log.warning("spool %s: ack of %d event(s) failed, they will be redelivered: %s",
                            self.path, len(ids), exc)

    # -- accounting ----------------------------------------------------------------------------

    def depth(self) -> int:
        with self._lock:
            return int(self._read(self._connection(), "depth", "SELECT events FROM totals")[0][0])

    def size_bytes(self) -> int:
        with self._lock:
            return int(self._read(self._connection(), "size", "SELECT bytes FROM totals")[0][0])

    def losses(self) -> dict[str, int]:
        """Events lost since the spool was made, by reason (only reasons with a count above zero)."""
        with self._lock:
            rows = self._read(self._connection(), "losses", "SELECT reason, count FROM losses")
            merged = Counter({reason: int(count) for reason, count in rows}) + self._unsaved
        return {reason: count for reason, count in sorted(merged.items()) if count > 0}

    def count_losses(self, losses: Mapping[str, int]) -> None:
        """Count events lost outside the spool's own bounds; kept in memory while the disk refuses."""
        with self._lock:
            conn = self._connection()
            try:
                with self._write(conn):
                    _add_losses(conn, Counter(losses) + self._unsaved)
            except (sqlite3.Error, OSError) as exc:
                self._count_failed_write(exc, losses, 0)
                return
            self._write_succeeded()

    # -- plumbing ------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise SpoolError(f"{self.path}: spool is closed")
        return self._conn

    def _cutoff(self) -> float:
        return self._clock() - self.max_age_s

    @contextmanager
    def _write(self, conn: sqlite3.Connection) -> Iterator[None]:
        """One write transaction; IMMEDIATE takes the write lock up front, waiting up to busy_timeout."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    def _read(self, conn: sqlite3.Connection, what: str, sql: str,
              params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise SpoolError(f"{self.path}: {what} failed: {exc}") from exc


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite may already have rolled back on SQLITE_FULL/IOERR; a failing rollback must not mask
    # the original error.
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.warning("spool rollback failed: %s", exc)


def _add_losses(conn: sqlite3.Connection, losses: Mapping[str, int]) -> None:
    conn.executemany(_SQL_ADD_LOSS, ((reason, count) for reason, count in losses.items() if count > 0))


def _open(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """Open (creating if needed) the spool file with owner-only access; refuse anything not ours."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Create the file ourselves with 0600 before SQLite does: SQLite gives the -wal and -shm
        # files the database file's mode, so the whole spool stays owner-only.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
    except OSError as exc:
        raise SpoolError(f"{path}: cannot create or open the spool file: {exc}") from exc
    conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    try:
        _configure(conn, path, busy_timeout_s)
        _create_schema(conn, path)
        _quick_check(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        raise _open_error(path, exc, busy_timeout_s) from exc
    except SpoolError:
        conn.close()
        raise
    return conn


def _open_error(path: Path, exc: sqlite3.Error, busy_timeout_s: float) -> SpoolError:
    reason = _loss_reason(exc)
    if reason == LOSS_BUSY:
        return SpoolError(f"{path}: spool is locked by another process (waited {busy_timeout_s:g} s): {exc}")
    if reason == LOSS_DISK_FULL:
        return SpoolError(f"{path}: cannot initialise the spool, the disk is full or failing: {exc}")
    return SpoolError(f"{path}: not a usable spool database ({exc}); move the file aside to start an empty spool")


def _configure(conn: sqlite3.Connection, path: Path, busy_timeout_s: float) -> None:
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
    if str(mode).lower() != "wal":
        raise SpoolError(f"{path}: cannot switch the spool to WAL mode (got journal_mode={mode})")
    # FULL: the WAL is synced on every commit, so an acknowledged put survives a power cut.
    conn.execute("PRAGMA synchronous = FULL")
    # After a burst the WAL is truncated back to this size at checkpoint instead of staying large.
    conn.execute(f"PRAGMA journal_size_limit = {8 * 2**20}")


def _create_schema(conn: sqlite3.Connection, path: Path) -> None:
    # Checked and created inside one IMMEDIATE transaction, so two processes opening a new file at
    # the same moment cannot both decide it is theirs to initialise halfway.
    conn.execute("BEGIN IMMEDIATE")
    try:
        (app_id,) = conn.execute("PRAGMA application_id").fetchone()
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if app_id != APPLICATION_ID and (app_id != 0 or tables - _OUR_TABLES):
            raise SpoolError(
                f"{path}: is an SQLite database of another application (application_id={app_id}, "
                f"tables={sorted(tables)}), not a Terminal Guard spool; point the spool elsewhere"
            )
        # An existing spool is opened without writing a byte, so `status` works on a full disk.
        if app_id != APPLICATION_ID or not _OUR_TABLES.issubset(tables):
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


def _quick_check(conn: sqlite3.Connection, path: Path) -> None:
    problems = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
    if problems != ["ok"]:
        raise SpoolError(f"{path}: spool database is corrupt: {'; '.join(problems)}")
