"""The SIEM forwarder: tails the events table and sends each new event, as ECS, to one sink.

It never touches ingest: agents' batches are committed by their own requests, and this thread
reads them afterwards. The events table is the durable queue; in memory there is one bounded
batch. The cursor (last event pk sent) lives in siem_cursors and moves only after a batch went
out, so a crash or a SIEM outage means a resend (at least once), never a gap. If the SIEM stays
away until the backlog passes ``max_backlog`` events, the oldest are skipped and counted.

Rows are read only once ``settle_s`` old: on PostgreSQL a transaction that took a lower pk can
commit after one with a higher pk, and waiting a moment lets it land before the cursor passes.
With several HQ replicas one forwarder holds the lease on the cursor row at a time.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hq.db import Device, StoredEvent
from hq.siem.ecs import to_ecs
from hq.siem.sinks import Line, Sink, SinkError, encode
from hq.siem.tables import SiemCursor

log = logging.getLogger(__name__)

LEASE_S = 30.0


@dataclass
class SiemStats:
    sent: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    lag: int = 0
    leader: bool = False
    last_error: str | None = None

    def drop(self, reason: str, count: int) -> None:
        if count:
            self.dropped[reason] = self.dropped.get(reason, 0) + count

    def lines(self) -> Iterator[str]:
        """Prometheus lines for hq.metrics."""
        yield "# HELP tg_siem_sent_total Events delivered to the SIEM sink by this process."
        yield "# TYPE tg_siem_sent_total counter"
        yield f"tg_siem_sent_total {self.sent}"
        yield "# HELP tg_siem_dropped_total Events never delivered, by reason."
        yield "# TYPE tg_siem_dropped_total counter"
        for reason in sorted({"too_large", "backlog", *self.dropped}):
            yield f'tg_siem_dropped_total{{reason="{reason}"}} {self.dropped.get(reason, 0)}'
        yield "# HELP tg_siem_errors_total Failed sends (each is retried)."
        yield "# TYPE tg_siem_errors_total counter"
        yield f"tg_siem_errors_total {self.errors}"
        yield "# HELP tg_siem_lag_events Stored events not yet delivered."
        yield "# TYPE tg_siem_lag_events gauge"
        yield f"tg_siem_lag_events {self.lag}"
        yield "# HELP tg_siem_leader 1 when this process holds the forwarding lease."
        yield "# TYPE tg_siem_leader gauge"
        yield f"tg_siem_leader {int(self.leader)}"


class SiemForwarder(threading.Thread):
    def __init__(
        self,
        *,
        sessions: sessionmaker,
        sink: Sink,
        batch: int = 500,
        period_s: float = 1.0,
        settle_s: float = 2.0,
        max_backlog: int = 1_000_000,
        backoff_max_s: float = 60.0,
    ) -> None:
        super().__init__(name="hq-siem", daemon=True)
        self._sessions = sessions
        self._sink = sink
        self._batch = batch
        self._period_s = period_s
        self._settle_s = settle_s
        self._max_backlog = max_backlog
        self._backoff_max_s = backoff_max_s
        self._owner = uuid.uuid4().hex
        self._stop_event = threading.Event()
        self.stats = SiemStats()

    def run(self) -> None:
        failures = 0
        while not self._stop_event.is_set():
            try:
                more = self.run_once()
                failures = 0
            except SinkError as exc:
                failures += 1
                self.stats.errors += 1
                self.stats.last_error = str(exc)
                log.warning("SIEM send failed (%d in a row), retrying: %s", failures, exc)
                more = False
            except Exception:
                failures += 1
                log.exception("SIEM forwarder failed; retrying")
                more = False
            if more:
                continue
            delay = self._period_s if failures == 0 else min(self._backoff_max_s, 2.0 ** failures)
            self._stop_event.wait(random.uniform(delay / 2, delay) if failures else delay)

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout_s)
        self._release()
        self._sink.close()

    def run_once(self, now: float | None = None) -> bool:
        """Send at most one batch; True when a full batch went out (more may be waiting)."""
        now = time.time() if now is None else now
        cursor = self._take_lease(now)
        self.stats.leader = cursor is not None
        if cursor is None:
            return False
        cursor = self._skip_backlog(cursor, now)
        rows = self._read(cursor, now)
        if not rows:
            return False
        dropped = self._sink.send(rows)
        self.stats.drop("too_large", dropped)
        self.stats.sent += len(rows) - dropped
        self._advance(rows[-1].pk, now)
        self.stats.lag = max(0, self.stats.lag - len(rows))
        return len(rows) == self._batch

    def _take_lease(self, now: float) -> int | None:
        """The cursor if this process holds (or just took) the lease, else None."""
        name = self._sink.name
        with self._sessions.begin() as session:
            if session.get(SiemCursor, name) is None:
                self._create_cursor(session, name, now)
        with self._sessions.begin() as session:
            taken = session.execute(
                update(SiemCursor)
                .where(SiemCursor.sink == name,
                       or_(SiemCursor.lease_owner.is_(None), SiemCursor.lease_owner == self._owner,
                           SiemCursor.lease_until < now))
                .values(lease_owner=self._owner, lease_until=now + LEASE_S)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount != 1:
                return None
            return int(session.scalar(select(SiemCursor.last_pk).where(SiemCursor.sink == name)) or 0)

    def _create_cursor(self, session: Session, name: str, now: float) -> None:
        # A new sink starts at the newest event: it gets what happens from now on, not years of history.
        latest = int(session.scalar(select(func.max(StoredEvent.pk))) or 0)
        try:
            with session.begin_nested():
                session.add(SiemCursor(sink=name, last_pk=latest, updated_at=now))
        except IntegrityError:
            pass  # another replica created it first

    def _skip_backlog(self, cursor: int, now: float) -> int:
        with self._sessions() as session:
            latest = int(session.scalar(select(func.max(StoredEvent.pk))) or 0)
        self.stats.lag = max(0, latest - cursor)
        if self.stats.lag <= self._max_backlog:
            return cursor
        skipped_to = latest - self._max_backlog
        self.stats.drop("backlog", skipped_to - cursor)
        log.error("SIEM backlog above %d events: skipped %d undelivered events", self._max_backlog,
                  skipped_to - cursor)
        self._advance(skipped_to, now)
        return skipped_to

    def _read(self, cursor: int, now: float) -> list[Line]:
        stmt = (
            select(StoredEvent, Device.outlet_id, Device.hostname)
            .outerjoin(Device, Device.id == StoredEvent.device_id)
            .where(StoredEvent.pk > cursor, StoredEvent.received_at <= now - self._settle_s)
            .order_by(StoredEvent.pk)
            .limit(self._batch)
        )
        with self._sessions() as session:
            rows = session.execute(stmt).all()
        lines = []
        for event, outlet_id, hostname in rows:
            record = {
                "pk": event.pk, "event_id": event.event_id, "device_id": event.device_id, "kind": event.kind,
                "priority": event.priority, "created": event.created, "received_at": event.received_at,
                "origin": event.origin, "body": event.body,
            }
            doc = to_ecs(record, outlet_id=outlet_id, hostname=hostname)
            lines.append(Line(pk=event.pk, text=encode(doc), priority=event.priority, kind=event.kind,
                              created=event.created))
        return lines

    def _advance(self, pk: int, now: float) -> None:
        with self._sessions.begin() as session:
            session.execute(
                update(SiemCursor)
                .where(SiemCursor.sink == self._sink.name, SiemCursor.lease_owner == self._owner)
                .values(last_pk=pk, updated_at=now, lease_until=now + LEASE_S)
                .execution_options(synchronize_session=False)
            )

    def _release(self) -> None:
        try:
            with self._sessions.begin() as session:
                session.execute(
                    update(SiemCursor)
                    .where(SiemCursor.sink == self._sink.name, SiemCursor.lease_owner == self._owner)
                    .values(lease_owner=None, lease_until=None)
                    .execution_options(synchronize_session=False)
                )
        except Exception:
            log.exception("could not release the SIEM lease; another replica takes it after %.0f s", LEASE_S)
