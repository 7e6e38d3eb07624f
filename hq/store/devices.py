"""Devices: enrollment, revocation, batched heartbeat state and the silent transition."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from hq.db import Device

STATUS_ONLINE = "online"
STATUS_SILENT = "silent"
STATUS_REVOKED = "revoked"


def new_device_id() -> str:
    return str(uuid.uuid4())


def create_device(
    session: Session, *, outlet_id: str, public_key: str, hostname: str, os: str, agent_version: str, now: float
) -> Device:
    device = Device(
        id=new_device_id(),
        outlet_id=outlet_id,
        public_key=public_key,
        hostname=hostname,
        os=os,
        agent_version=agent_version,
        enrolled_at=now,
        last_seq=0,
        heartbeat_count=0,
        silent=False,
    )
    session.add(device)
    return device


def get_device(session: Session, *, device_id: str) -> Device | None:
    return session.get(Device, device_id)


def list_devices(session: Session, *, outlet_id: str | None = None) -> list[Device]:
    stmt = select(Device).order_by(Device.outlet_id, Device.enrolled_at)
    if outlet_id is not None:
        stmt = stmt.where(Device.outlet_id == outlet_id)
    return list(session.scalars(stmt))


def revoke_device(session: Session, *, device_id: str, reason: str, now: float) -> bool:
    """Revoke a device; True if this call revoked it, False if it already was. LookupError if unknown."""
    result = session.execute(
        update(Device)
        .where(Device.id == device_id, Device.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        return True
    if session.get(Device, device_id) is None:
        raise LookupError(f"no device with id {device_id!r}")
    return False


def revoked_since(session: Session, *, since: float) -> list[str]:
    return list(session.scalars(select(Device.id).where(Device.revoked_at >= since)))


def _update_by_id(columns: Sequence[str]) -> Any:
    """UPDATE devices SET col = :col, ... WHERE id = :b_id: one Core statement for executemany."""
    table = cast(Table, Device.__table__)
    return (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values({name: bindparam(name) for name in columns})
    )


def _execute_by_id(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    # Core executemany rather than the ORM's bulk update: no per-row ORM bookkeeping, which at
    # fleet scale (a row per device per flush) is most of the flush's CPU.
    if not rows:
        return
    columns = [name for name in rows[0] if name != "id"]
    params = [{"b_id": row["id"], **{name: row[name] for name in columns}} for row in rows]
    session.execute(_update_by_id(columns), params)


def write_heartbeats(session: Session, *, rows: Sequence[dict[str, Any]]) -> None:
    """One executemany UPDATE by primary key for every device that beat since the last flush.

    Every row has the same keys: ``id`` and the columns to set. A heartbeat also ends a
    silence, so the rows clear the flag too.
    """
    _execute_by_id(session, rows)


def write_seqs(session: Session, *, rows: Sequence[dict[str, Any]]) -> None:
    """Persist the last accepted sequence number of devices that sent something other than a heartbeat."""
    _execute_by_id(session, rows)


def _overdue(*, now: float, silent_after_s: float, default_interval_s: float) -> ColumnElement[bool]:
    last_seen = func.coalesce(Device.last_heartbeat, Device.enrolled_at)
    interval = func.coalesce(Device.interval_s, default_interval_s)
    return last_seen + interval + silent_after_s < now


def overdue_devices(
    session: Session, *, now: float, silent_after_s: float, default_interval_s: float
) -> list[tuple[str, float | None, float]]:
    """(device id, last heartbeat, enrolled at) of live devices that have gone quiet and are not yet marked."""
    stmt = select(Device.id, Device.last_heartbeat, Device.enrolled_at).where(
        Device.revoked_at.is_(None),
        Device.silent.is_(False),
        _overdue(now=now, silent_after_s=silent_after_s, default_interval_s=default_interval_s),
    )
    return [(row[0], row[1], row[2]) for row in session.execute(stmt)]


def mark_silent(
    session: Session, *, device_id: str, now: float, silent_after_s: float, default_interval_s: float
) -> bool:
    """Flag one device silent; True only for the one call that made the transition.

    The overdue test is repeated in the UPDATE so a heartbeat flushed after the candidate query
    wins, and two monitors (or two HQ processes) cannot both raise the alert.
    """
    result = session.execute(
        update(Device)
        .where(
            Device.id == device_id,
            Device.revoked_at.is_(None),
            Device.silent.is_(False),
            _overdue(now=now, silent_after_s=silent_after_s, default_interval_s=default_interval_s),
        )
        .values(silent=True, silent_since=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def device_status(device: Device, *, now: float, silent_after_s: float, default_interval_s: float) -> str:
    """online / silent / revoked, the same words in the CLI, the console and the API."""
    if device.revoked_at is not None:
        return STATUS_REVOKED
    if device.silent:
        return STATUS_SILENT
    last_seen = device.last_heartbeat if device.last_heartbeat is not None else device.enrolled_at
    interval = device.interval_s if device.interval_s is not None else default_interval_s
    return STATUS_SILENT if last_seen + interval + silent_after_s < now else STATUS_ONLINE
