"""Fleet queries: status counts, outlets with their PCs, versions, and a filtered, paged PC list.

Status is computed in SQL with the same rule as hq.store.devices.device_status, so the console,
the CLI and the API never disagree about which PC is silent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from hq.commands import device_record
from hq.db import Device
from hq.store.devices import STATUS_ONLINE, STATUS_REVOKED, STATUS_SILENT

STATUSES = (STATUS_ONLINE, STATUS_SILENT, STATUS_REVOKED)


@dataclass(frozen=True)
class Judge:
    """What decides a status: the time, and the silence settings of the running HQ."""

    now: float
    silent_after_s: float
    default_interval_s: float


def status_expr(judge: Judge) -> ColumnElement[str]:
    last_seen = func.coalesce(Device.last_heartbeat, Device.enrolled_at)
    interval = func.coalesce(Device.interval_s, judge.default_interval_s)
    overdue = last_seen + interval + judge.silent_after_s < judge.now
    return case(
        (Device.revoked_at.is_not(None), literal(STATUS_REVOKED)),
        (or_(Device.silent.is_(True), overdue), literal(STATUS_SILENT)),
        else_=literal(STATUS_ONLINE),
    )


def status_counts(session: Session, judge: Judge) -> dict[str, int]:
    status = status_expr(judge).label("status")
    counts = dict.fromkeys(STATUSES, 0)
    for name, count in session.execute(select(status, func.count()).group_by(status)):
        counts[name] = int(count)
    return counts


@dataclass(frozen=True)
class OutletRow:
    outlet_id: str
    total: int
    online: int
    silent: int
    revoked: int
    last_heartbeat: float | None
    behind_policy: int  # live PCs not yet on the current policy version


def outlet_rows(
    session: Session, judge: Judge, *, current_policy: int, outlet_prefix: str | None = None, limit: int = 500
) -> list[OutletRow]:
    """Outlets with the most trouble first (silent, then PCs behind on policy), then by id."""
    status = status_expr(judge)
    live = Device.revoked_at.is_(None)
    silent = func.sum(case((status == STATUS_SILENT, 1), else_=0))
    behind = func.sum(
        case((and_(live, func.coalesce(Device.policy_version, 0) < current_policy), 1), else_=0)
    )
    stmt = select(
        Device.outlet_id,
        func.count(),
        func.sum(case((status == STATUS_ONLINE, 1), else_=0)),
        silent,
        func.sum(case((status == STATUS_REVOKED, 1), else_=0)),
        func.max(Device.last_heartbeat),
        behind,
    ).group_by(Device.outlet_id)
    if outlet_prefix:
        stmt = stmt.where(Device.outlet_id.startswith(outlet_prefix, autoescape=True))
    stmt = stmt.order_by(silent.desc(), behind.desc(), Device.outlet_id).limit(limit)
    return [
        OutletRow(
            outlet_id=row[0],
            total=int(row[1]),
            online=int(row[2] or 0),
            silent=int(row[3] or 0),
            revoked=int(row[4] or 0),
            last_heartbeat=row[5],
            behind_policy=int(row[6] or 0),
        )
        for row in session.execute(stmt)
    ]


def outlet_count(session: Session) -> int:
    return int(session.scalar(select(func.count(func.distinct(Device.outlet_id)))) or 0)


def version_counts(session: Session) -> dict[str, list[tuple[str, int]]]:
    """How many live PCs run each agent version and each policy version, most common first."""
    live = Device.revoked_at.is_(None)
    agent = session.execute(
        select(Device.agent_version, func.count()).where(live).group_by(Device.agent_version)
        .order_by(func.count().desc())
    )
    policy = session.execute(
        select(Device.policy_version, func.count()).where(live).group_by(Device.policy_version)
        .order_by(func.count().desc())
    )
    return {
        "agent": [(str(version), int(count)) for version, count in agent],
        "policy": [("none" if version is None else str(version), int(count)) for version, count in policy],
    }


@dataclass(frozen=True)
class DeviceFilter:
    status: str | None = None
    outlet: str | None = None
    # A device id or hostname prefix, or the signed-in staff id.
    query: str | None = None


def _filtered(stmt: Any, judge: Judge, where: DeviceFilter) -> Any:
    if where.status in STATUSES:
        stmt = stmt.where(status_expr(judge) == where.status)
    if where.outlet:
        stmt = stmt.where(Device.outlet_id == where.outlet)
    if where.query:
        text = where.query.strip()
        stmt = stmt.where(
            or_(
                Device.id.startswith(text, autoescape=True),
                Device.hostname.startswith(text, autoescape=True),
                Device.staff == text,
            )
        )
    return stmt


def device_page(
    session: Session, judge: Judge, where: DeviceFilter, *, limit: int = 200, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """One page of PCs as the CLI's device records, and how many match in all."""
    total = int(session.scalar(_filtered(select(func.count()).select_from(Device), judge, where)) or 0)
    stmt = _filtered(select(Device), judge, where).order_by(Device.outlet_id, Device.hostname, Device.id)
    rows = session.scalars(stmt.limit(limit).offset(offset))
    return [record_of(row, judge) for row in rows], total


def record_of(device: Device, judge: Judge) -> dict[str, Any]:
    """The CLI's device record (same words everywhere), plus the raw time for "how long ago"."""
    record = device_record(
        device, now=judge.now, silent_after_s=judge.silent_after_s, default_interval_s=judge.default_interval_s
    )
    record["last_heartbeat_ts"] = device.last_heartbeat
    return record
