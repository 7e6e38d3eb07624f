"""Stored events: idempotent ingest on (device, event id), HQ's own alerts, and queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from agent.events import PRIORITY_HIGH, new_event_id
from hq.db import StoredEvent

ORIGIN_AGENT = "agent"
ORIGIN_HQ = "hq"


def _insert(session: Session) -> Any:
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert
    if name == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"unsupported database dialect {name!r}; HQ runs on SQLite or PostgreSQL")


def insert_events(
    session: Session, *, device_id: str, events: Sequence[dict[str, Any]], received_at: float, origin: str
) -> int:
    """Insert what is new and skip ids already stored for this device; return how many were new.

    ``events`` are wire dicts (id, kind, priority, created, body). One INSERT .. ON CONFLICT DO
    NOTHING .. RETURNING counts exactly the rows this call added, on both dialects, so a batch
    resent after a lost response is stored once and reported as duplicates.
    """
    unique = {event["id"]: event for event in events}
    if not unique:
        return 0
    rows = [
        {
            "device_id": device_id,
            "event_id": event["id"],
            "kind": event["kind"],
            "priority": event["priority"],
            "created": event["created"],
            "received_at": received_at,
            "origin": origin,
            "body": event["body"],
        }
        for event in unique.values()
    ]
    stmt = (
        _insert(session)(StoredEvent)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["device_id", "event_id"])
        .returning(StoredEvent.event_id)
    )
    return len(session.execute(stmt).scalars().all())


def record_hq_event(
    session: Session, *, device_id: str, kind: str, body: dict[str, Any], now: float, priority: int = PRIORITY_HIGH
) -> None:
    """An event HQ concluded itself (a silent PC, an unenrolment), stored beside the device's own."""
    event = {"id": new_event_id(), "kind": kind, "priority": priority, "created": now, "body": body}
    insert_events(session, device_id=device_id, events=[event], received_at=now, origin=ORIGIN_HQ)


def list_events(
    session: Session,
    *,
    since: float | None = None,
    kind: str | None = None,
    device_id: str | None = None,
    limit: int = 1000,
) -> list[StoredEvent]:
    """The newest ``limit`` matching events, oldest first."""
    stmt = select(StoredEvent)
    if since is not None:
        stmt = stmt.where(StoredEvent.received_at >= since)
    if kind is not None:
        stmt = stmt.where(StoredEvent.kind == kind)
    if device_id is not None:
        stmt = stmt.where(StoredEvent.device_id == device_id)
    newest = list(session.scalars(stmt.order_by(StoredEvent.pk.desc()).limit(limit)))
    return newest[::-1]
