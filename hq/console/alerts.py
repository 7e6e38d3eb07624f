"""The alert queue: which stored events are alerts, their category, filters, and triage.

An alert is a stored event of kind ``finding`` (a rule fired on a PC), ``policy.rejected``, or
``alert.*`` (HQ's own conclusions: a silent PC, credential sharing). ``alert.answered`` is staff
answering an alert on the PC: context shown on the PC's page, not a new alert.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from agent.findings import CATEGORIES as FINDING_CATEGORIES
from hq.console.tables import AlertState
from hq.db import Device, StoredEvent

FINDING = "finding"
POLICY_REJECTED = "policy.rejected"
DEVICE_SILENT = "alert.device_silent"
SHARING_PREFIX = "alert.sharing."
ALERT_PREFIX = "alert."
NOT_ALERTS = ("alert.answered",)

CATEGORIES = (*FINDING_CATEGORIES, "silence", "policy", "other")
SEVERITIES = ("low", "medium", "high", "critical")  # by priority 0..3

OPEN = "open"
ACKNOWLEDGED = "acknowledged"
RESOLVED = "resolved"
STATES = (OPEN, ACKNOWLEDGED, RESOLVED)
ACTIONS = {"acknowledge": ACKNOWLEDGED, "resolve": RESOLVED, "reopen": OPEN}
MAX_NOTE = 500

# Body keys worth a glance in the queue; the whole body is one click away.
FACT_KEYS = (
    "rule", "process.name", "process.command_line", "process.parent.name", "file.path", "file.size",
    "pii.counts", "rows", "scan.sampled", "staff_id", "staff", "response", "last_heartbeat", "reason", "version",
    "remote.ip",
)


def alert_condition() -> ColumnElement[bool]:
    kind = StoredEvent.kind
    return or_(
        kind == FINDING,
        kind == POLICY_REJECTED,
        and_(kind.startswith(ALERT_PREFIX), kind.not_in(NOT_ALERTS)),
    )


def _body_category() -> ColumnElement[str]:
    return StoredEvent.body["category"].as_string()


def category_condition(category: str) -> ColumnElement[bool]:
    kind = StoredEvent.kind
    if category == "silence":
        return kind == DEVICE_SILENT
    if category == "policy":
        return kind == POLICY_REJECTED
    if category == "sharing":
        return or_(kind.startswith(SHARING_PREFIX), and_(kind == FINDING, _body_category() == "sharing"))
    if category in FINDING_CATEGORIES:
        return and_(kind == FINDING, _body_category() == category)
    # "other": HQ alerts of a kind this console does not know yet, and findings without a known category.
    return or_(
        and_(kind.startswith(ALERT_PREFIX), kind != DEVICE_SILENT, ~kind.startswith(SHARING_PREFIX)),
        and_(kind == FINDING, or_(_body_category().is_(None), _body_category().not_in(FINDING_CATEGORIES))),
    )


def category_of(kind: str, body: dict[str, Any]) -> str:
    if kind == FINDING:
        category = body.get("category")
        return category if isinstance(category, str) and category in FINDING_CATEGORIES else "other"
    if kind == DEVICE_SILENT:
        return "silence"
    if kind.startswith(SHARING_PREFIX):
        return "sharing"
    if kind == POLICY_REJECTED:
        return "policy"
    return "other"


def title_of(kind: str, body: dict[str, Any]) -> str:
    if kind == FINDING:
        return str(body.get("title") or body.get("rule") or "finding")
    if kind == DEVICE_SILENT:
        return "PC went silent"
    if kind.startswith(SHARING_PREFIX):
        return str(body.get("title") or "credential sharing: " + kind[len(SHARING_PREFIX):].replace("_", " "))
    if kind == POLICY_REJECTED:
        return f"PC rejected policy version {body.get('version')}"
    return kind


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def severity_of(priority: int) -> str:
    return SEVERITIES[min(max(priority, 0), 3)]


@dataclass(frozen=True)
class AlertFilter:
    state: str | None = OPEN  # None: every state
    category: str | None = None
    min_priority: int | None = None
    outlet: str | None = None
    device: str | None = None
    since: float | None = None


@dataclass(frozen=True)
class AlertRow:
    pk: int
    received_at: float
    created: float
    device_id: str
    outlet_id: str | None
    hostname: str | None
    kind: str
    origin: str
    priority: int
    category: str
    title: str
    state: str
    analyst_id: str | None
    note: str | None
    updated_at: float | None
    body: dict[str, Any] = field(repr=False)

    @property
    def severity(self) -> str:
        return severity_of(self.priority)

    @property
    def facts(self) -> list[tuple[str, str]]:
        return [(key, _short(self.body[key])) for key in FACT_KEYS if self.body.get(key) is not None]

    @property
    def body_json(self) -> str:
        return json.dumps(self.body, ensure_ascii=False, sort_keys=True, indent=2)


def _state_condition(state: str) -> ColumnElement[bool]:
    if state == OPEN:
        return or_(AlertState.state.is_(None), AlertState.state == OPEN)
    return AlertState.state == state


AlertSelect = Select[StoredEvent, AlertState, str, str]


def alert_select(where: AlertFilter) -> AlertSelect:
    stmt: AlertSelect = (
        select(StoredEvent, AlertState, Device.outlet_id, Device.hostname)
        .outerjoin(AlertState, AlertState.event_pk == StoredEvent.pk)
        .outerjoin(Device, Device.id == StoredEvent.device_id)
        .where(alert_condition())
    )
    if where.state in STATES:
        stmt = stmt.where(_state_condition(where.state))
    if where.category in CATEGORIES:
        stmt = stmt.where(category_condition(where.category))
    if where.min_priority is not None:
        stmt = stmt.where(StoredEvent.priority >= where.min_priority)
    if where.outlet:
        stmt = stmt.where(Device.outlet_id == where.outlet)
    if where.device:
        stmt = stmt.where(StoredEvent.device_id == where.device)
    if where.since is not None:
        stmt = stmt.where(StoredEvent.received_at >= where.since)
    return stmt


def alert_row(event: StoredEvent, state: AlertState | None, outlet_id: str | None, hostname: str | None) -> AlertRow:
    body = event.body if isinstance(event.body, dict) else {"value": event.body}
    return AlertRow(
        pk=event.pk,
        received_at=event.received_at,
        created=event.created,
        device_id=event.device_id,
        outlet_id=outlet_id,
        hostname=hostname,
        kind=event.kind,
        origin=event.origin,
        priority=event.priority,
        category=category_of(event.kind, body),
        title=title_of(event.kind, body),
        state=state.state if state is not None else OPEN,
        analyst_id=state.analyst_id if state is not None else None,
        note=state.note if state is not None else None,
        updated_at=state.updated_at if state is not None else None,
        body=body,
    )


def list_alerts(
    session: Session, where: AlertFilter, *, after_pk: int | None = None, before_pk: int | None = None,
    limit: int = 100,
) -> list[AlertRow]:
    """Newest first; ``after_pk`` gives only what arrived since the page was drawn (the live queue)."""
    stmt = alert_select(where)
    if after_pk is not None:
        stmt = stmt.where(StoredEvent.pk > after_pk)
    if before_pk is not None:
        stmt = stmt.where(StoredEvent.pk < before_pk)
    rows = session.execute(stmt.order_by(StoredEvent.pk.desc()).limit(limit))
    return [alert_row(*row) for row in rows]


def get_alert(session: Session, *, pk: int) -> AlertRow | None:
    stmt = alert_select(AlertFilter(state=None)).where(StoredEvent.pk == pk)
    row = session.execute(stmt).first()
    return None if row is None else alert_row(*row)


def count_open(session: Session, *, since: float) -> int:
    stmt = (
        select(func.count())
        .select_from(StoredEvent)
        .outerjoin(AlertState, AlertState.event_pk == StoredEvent.pk)
        .where(alert_condition(), _state_condition(OPEN), StoredEvent.received_at >= since)
    )
    return int(session.scalar(stmt) or 0)


def latest_pk(session: Session) -> int:
    return int(session.scalar(select(func.max(StoredEvent.pk))) or 0)


class TriageError(ValueError):
    pass


def triage(
    session: Session, *, pk: int, action: str, analyst_id: str, note: str | None, now: float
) -> tuple[str, str]:
    """Move one alert to the state of ``action``; return (state before, state after)."""
    if action not in ACTIONS:
        raise TriageError(f"action: expected one of {', '.join(ACTIONS)}, got {action!r:.40}")
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_NOTE:
        raise TriageError(f"note: at most {MAX_NOTE} characters, got {len(note)}")
    alert = get_alert(session, pk=pk)
    if alert is None:
        raise LookupError(f"no alert {pk}")
    target = ACTIONS[action]
    stored = session.get(AlertState, pk)
    if stored is None:
        stored = AlertState(event_pk=pk)
        session.add(stored)
    stored.state = target
    stored.updated_at = now
    stored.analyst_id = analyst_id
    stored.note = note
    return alert.state, target
