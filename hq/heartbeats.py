"""Live per-device state kept in memory and flushed to the database in batches.

At fleet scale (100,000 PCs beating every 10 s) a row write per heartbeat would make the database
the bottleneck. Instead every device HQ has seen holds a LiveDevice here: its key, whether it is
revoked, its last accepted sequence number and its latest heartbeat. A flush every ~1 s writes all
devices that changed in one transaction; a clean shutdown flushes once more.

A crash (not a clean stop) loses at most one flush interval of heartbeat state and of accepted
sequence numbers, and the nonce cache lives in memory: a request from that last second, replayed
within the timestamp window right after a crash restart, would be accepted once. What it could
repeat is harmless by design: a heartbeat, a policy fetch, or an event batch that is idempotent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.exc import DataError, DBAPIError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from agent.events import PRIORITY_LOW
from agent.signing import load_public_key
from hq.db import DEVICE_ID_LENGTH, Device
from hq.store.devices import get_device, revoked_since, write_heartbeats, write_seqs
from hq.store.events import record_hq_event

log = logging.getLogger(__name__)

# Columns a heartbeat sets; missing identity fields keep their stored value.
HEARTBEAT_COLUMNS = (
    "agent_version",
    "policy_version",
    "interval_s",
    "spool_depth",
    "staff",
    "lost_events",
    "hostname",
    "os",
    "posture",
)
_KEEP_IF_MISSING = {"agent_version", "hostname", "os"}
# A revocation made by the CLI (another process) is noticed by polling; the overlap covers
# clock steps and transactions that committed after the previous poll started.
REVOCATION_POLL_OVERLAP_S = 30.0
UNKNOWN_DEVICE_TTL_S = 10.0
UNKNOWN_DEVICE_CACHE = 10_000
# Lost-event counts kept per device: as many reasons as a heartbeat may carry, each capped where
# the heartbeat model caps a count.
MAX_LOSS_REASONS = 32
MAX_LOSS_COUNT = 2**62


@dataclass(slots=True, eq=False)
class LiveDevice:
    device_id: str
    outlet_id: str
    public_key: Ed25519PublicKey
    revoked: bool
    last_seq: int
    heartbeat_count: int
    last_heartbeat: float | None
    silent: bool
    columns: dict[str, Any]
    back_online: bool = False
    # Whether the device already waits in a flush queue (so it is queued once per flush).
    queued_beat: bool = False
    queued_seq: bool = False

    @classmethod
    def from_row(cls, row: Device) -> LiveDevice:
        return cls(
            device_id=row.id,
            outlet_id=row.outlet_id,
            public_key=load_public_key(row.public_key),
            revoked=row.revoked_at is not None,
            last_seq=row.last_seq,
            heartbeat_count=row.heartbeat_count,
            last_heartbeat=row.last_heartbeat,
            silent=row.silent,
            columns={name: getattr(row, name) for name in HEARTBEAT_COLUMNS},
        )


def reported_losses(reported: dict[str, int]) -> dict[str, int]:
    """The lost-event totals a heartbeat carries, bounded: at most 32 reasons (no honest agent
    has that many), each count capped. An agent reports its totals since its spool was made
    (agent.spool), so HQ keeps the latest: a heartbeat stored twice cannot count a loss twice.
    """
    kept = dict(list(reported.items())[:MAX_LOSS_REASONS])
    return {reason: min(count, MAX_LOSS_COUNT) for reason, count in kept.items()}


# What a value the database cannot take raises: its DataError (NUL in text, a bigint out of range,
# a surrogate inside JSON) or, when the driver cannot even send it, a StatementError or the bare
# ValueError / TypeError / OverflowError (a lone surrogate in text, an int past 64 bits in SQLite).
_VALUE_ERRORS = (StatementError, ValueError, TypeError, OverflowError)


def _value_refused(exc: Exception) -> bool:
    """A refused value, not a lost connection or a lock (other DBAPIErrors): those retry whole."""
    return isinstance(exc, DataError) or not isinstance(exc, DBAPIError)


def _first_line(exc: Exception) -> str:
    cause = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    return f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"


def _write_rest(session: Session, *, seqs: list[dict[str, Any]], back_online: list[tuple[str, float]]) -> None:
    write_seqs(session, rows=seqs)
    for device_id, at in back_online:
        record_hq_event(
            session,
            device_id=device_id,
            kind="device.back_online",
            body={"device_id": device_id, "last_heartbeat": at},
            now=at,
            priority=PRIORITY_LOW,
        )


@dataclass
class _Snapshot:
    heartbeats: list[dict[str, Any]] = field(default_factory=list)
    seqs: list[dict[str, Any]] = field(default_factory=list)
    back_online: list[tuple[str, float]] = field(default_factory=list)
    beat_devices: list[LiveDevice] = field(default_factory=list)
    seq_devices: list[LiveDevice] = field(default_factory=list)


class LiveState:
    """The in-memory registry of devices.

    The hot path takes no lock. Device fields are written only on the event loop (request
    verification and heartbeats run there, one coroutine step at a time); changed devices are
    appended to deques, whose append and popleft are atomic, and the flush thread drains them.
    A device's flag is cleared before its fields are read, so a change racing with a flush is
    either in this flush or queued for the next one, never lost.
    """

    def __init__(self, sessions: sessionmaker) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()  # guards the registry's shape (first sight), not the hot path
        self._devices: dict[str, LiveDevice] = {}
        self._unknown: dict[str, float] = {}
        self._beats: deque[LiveDevice] = deque()
        self._seqs: deque[LiveDevice] = deque()
        self._revocations_polled_at = time.time()

    def get(self, device_id: str) -> LiveDevice | None:
        return self._devices.get(device_id)

    def load(self, device_id: str) -> LiveDevice | None:
        """First sight of a device: read it once from the database (blocking; run off the event loop)."""
        if len(device_id) > DEVICE_ID_LENGTH:
            return None
        if self._unknown.get(device_id, 0.0) > time.monotonic():
            return None
        with self._sessions() as session:
            row = get_device(session, device_id=device_id)
            live = LiveDevice.from_row(row) if row is not None else None
        with self._lock:
            if live is None:
                if len(self._unknown) >= UNKNOWN_DEVICE_CACHE:
                    self._unknown.clear()
                self._unknown[device_id] = time.monotonic() + UNKNOWN_DEVICE_TTL_S
                return None
            return self._devices.setdefault(device_id, live)

    def forget_unknown(self, device_id: str) -> None:
        self._unknown.pop(device_id, None)

    def accept_seq(self, device: LiveDevice, seq: int) -> int | None:
        """Take ``seq`` if it is above the last accepted one; otherwise return that last one.

        Event loop only: the compare and the store have no await between them, so no other
        request of the device can interleave.
        """
        if seq <= device.last_seq:
            return device.last_seq
        device.last_seq = seq
        self._queue_seq(device)
        return None

    def record_heartbeat(self, device: LiveDevice, columns: dict[str, Any], *, now: float) -> None:
        """Event loop only (see the class docstring)."""
        stored = device.columns
        for name, value in columns.items():
            if name == "lost_events":
                stored[name] = reported_losses(value or {})
            elif value is not None or name not in _KEEP_IF_MISSING:
                stored[name] = value
        device.last_heartbeat = now
        device.heartbeat_count += 1
        if device.silent:
            device.silent = False
            device.back_online = True
        self._queue_beat(device)

    def _queue_beat(self, device: LiveDevice) -> None:
        if not device.queued_beat:
            device.queued_beat = True
            self._beats.append(device)

    def _queue_seq(self, device: LiveDevice) -> None:
        if not device.queued_seq:
            device.queued_seq = True
            self._seqs.append(device)

    def mark_revoked(self, device_ids: list[str]) -> None:
        for device_id in device_ids:
            live = self._devices.get(device_id)
            if live is not None:
                live.revoked = True

    def silenced(self, device_id: str, *, checked_heartbeat: float | None) -> None:
        """The silent monitor flagged a device; a beat that raced in after its check clears it again."""
        live = self._devices.get(device_id)
        if live is None:
            return
        if live.last_heartbeat == checked_heartbeat:
            live.silent = True
        else:
            live.back_online = True
            self._queue_beat(live)

    def heard_since(self, device_id: str) -> float | None:
        live = self._devices.get(device_id)
        return None if live is None else live.last_heartbeat

    def __len__(self) -> int:
        return len(self._devices)

    def _snapshot(self) -> _Snapshot:
        snap = _Snapshot()
        while self._beats:
            live = self._beats.popleft()
            live.queued_beat = False  # before reading: a later beat queues the device again
            snap.beat_devices.append(live)
            snap.heartbeats.append(
                {
                    "id": live.device_id,
                    "last_seq": live.last_seq,
                    "last_heartbeat": live.last_heartbeat,
                    "heartbeat_count": live.heartbeat_count,
                    "silent": False,
                    "silent_since": None,
                    **live.columns,
                }
            )
            if live.back_online:
                live.back_online = False
                snap.back_online.append((live.device_id, live.last_heartbeat or time.time()))
        beat_ids = {row["id"] for row in snap.heartbeats}
        while self._seqs:
            live = self._seqs.popleft()
            live.queued_seq = False
            snap.seq_devices.append(live)
            if live.device_id not in beat_ids:  # a heartbeat row already carries last_seq
                snap.seqs.append({"id": live.device_id, "last_seq": live.last_seq})
        return snap

    def flush(self) -> int:
        """Write every changed device in one transaction; on failure they are queued again.

        A value the database refuses fails the whole batch. Then the heartbeats are written
        apart and the refused one is dropped (and logged), so one device's value can never stop
        every other device's heartbeats from being recorded.
        """
        snap = self._snapshot()
        if not (snap.beat_devices or snap.seq_devices):
            return 0
        try:
            try:
                with self._sessions.begin() as session:
                    write_heartbeats(session, rows=snap.heartbeats)
                    _write_rest(session, seqs=snap.seqs, back_online=snap.back_online)
            except _VALUE_ERRORS as exc:
                if not _value_refused(exc):
                    raise
                seqs = snap.seqs + self._write_heartbeats_apart(snap.heartbeats)
                with self._sessions.begin() as session:
                    _write_rest(session, seqs=seqs, back_online=snap.back_online)
        except Exception:
            self._requeue(snap)
            raise
        return len({live.device_id for live in snap.beat_devices + snap.seq_devices})

    def _write_heartbeats_apart(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Write halves of the batch in their own transactions, down to each refused row.

        Halving finds k bad rows among n in about 2k·log2(n) transactions, so a fleet-sized
        batch does not turn into one transaction per device. Returns the sequence-number rows of
        the dropped devices: their last_seq is still worth keeping.
        """
        dropped: list[dict[str, Any]] = []
        pending = [rows[: len(rows) // 2], rows[len(rows) // 2 :]]
        while pending:
            part = pending.pop()
            if not part:
                continue
            try:
                with self._sessions.begin() as session:
                    write_heartbeats(session, rows=part)
            except _VALUE_ERRORS as exc:
                if not _value_refused(exc):
                    raise
                if len(part) > 1:
                    pending += [part[: len(part) // 2], part[len(part) // 2 :]]
                    continue
                log.error(
                    "heartbeat of device %s not stored: the database refused a value (%s)",
                    part[0]["id"], _first_line(exc),
                )
                dropped.append({"id": part[0]["id"], "last_seq": part[0]["last_seq"]})
        return dropped

    def _requeue(self, snap: _Snapshot) -> None:
        online_again = {device_id for device_id, _ in snap.back_online}
        for live in snap.beat_devices:
            live.back_online = live.back_online or live.device_id in online_again
            self._queue_beat(live)
        for live in snap.seq_devices:
            self._queue_seq(live)

    def poll_revocations(self) -> int:
        """Notice revocations made by another process (the CLI) within about one flush interval."""
        started = time.time()
        with self._sessions() as session:
            revoked = revoked_since(session, since=self._revocations_polled_at - REVOCATION_POLL_OVERLAP_S)
        self._revocations_polled_at = started
        self.mark_revoked(revoked)
        return len(revoked)
