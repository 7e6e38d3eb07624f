"""Credential-sharing cases: HQ's ``alert.sharing.*`` alerts grouped by the staff account they name.

Only HQ's own events count (origin "hq"): a PC cannot open or pad a case by choosing a kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import or_
from sqlalchemy.orm import Session

from hq.console.alerts import OPEN, SHARING_PREFIX, AlertFilter, AlertRow, alert_row, alert_select
from hq.console.staff_link import staff_of
from hq.db import StoredEvent
from hq.store.events import ORIGIN_HQ

MAX_EVENTS = 5000


@dataclass
class SharingCase:
    staff_id: str
    first_at: float
    last_at: float
    count: int = 0
    open_count: int = 0
    max_priority: int = 0
    kinds: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)
    outlets: set[str] = field(default_factory=set)

    def add(self, alert: AlertRow) -> None:
        self.count += 1
        self.open_count += alert.state == OPEN
        self.max_priority = max(self.max_priority, alert.priority)
        self.first_at = min(self.first_at, alert.received_at)
        self.last_at = max(self.last_at, alert.received_at)
        self.kinds.add(alert.kind[len(SHARING_PREFIX):])
        self.devices.add(alert.device_id)
        outlet = alert.outlet_id or alert.body.get("outlet_id")
        if isinstance(outlet, str) and outlet:
            self.outlets.add(outlet)


def _sharing_alerts(session: Session, *, since: float | None, staff_id: str | None, limit: int) -> list[AlertRow]:
    stmt = alert_select(AlertFilter(state=None, since=since)).where(
        StoredEvent.kind.startswith(SHARING_PREFIX), StoredEvent.origin == ORIGIN_HQ
    )
    if staff_id is not None:
        stmt = stmt.where(
            or_(StoredEvent.body["staff_id"].as_string() == staff_id, StoredEvent.body["staff"].as_string() == staff_id)
        )
    rows = session.execute(stmt.order_by(StoredEvent.pk.desc()).limit(limit))
    return [alert_row(*row) for row in rows]


def sharing_cases(session: Session, *, since: float | None) -> list[SharingCase]:
    """Cases with open alerts first, then the most recent."""
    cases: dict[str, SharingCase] = {}
    for alert in _sharing_alerts(session, since=since, staff_id=None, limit=MAX_EVENTS):
        staff = staff_of(alert.body) or "(unknown staff)"
        case = cases.setdefault(staff, SharingCase(staff, alert.received_at, alert.received_at))
        case.add(alert)
    return sorted(cases.values(), key=lambda c: (c.open_count == 0, -c.last_at))


def case_evidence(session: Session, *, staff_id: str, since: float | None = None) -> list[AlertRow]:
    """Every sharing alert naming this staff member, newest first."""
    return _sharing_alerts(session, since=since, staff_id=staff_id, limit=MAX_EVENTS)
