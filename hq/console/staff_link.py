"""Where the console meets session binding (issue 5): suspend / clear a staff binding, and acknowledgements.

The console only needs these two small interfaces. Session binding (issue 5) implements them over
its tables (hq.staff.control) and sets them on app.state; without it, staff actions are shown as
unavailable rather than pretending to work, and the register reads ``policy.acknowledged`` events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from hq.db import Device, StoredEvent

ACK_KIND = "policy.acknowledged"
STATE_ATTR = "staff_control"
ACK_STATE_ATTR = "ack_source"


class StaffControl(Protocol):
    """Issue 5's staff directory as the console uses it. Every call runs in the caller's transaction."""

    available: bool

    def suspended(self, session: Session, staff_ids: Iterable[str]) -> set[str]:
        """Which of these staff members are suspended now."""
        ...

    def suspend(self, session: Session, *, staff_id: str, actor: str, reason: str, now: float) -> bool:
        """Suspend every bound session of a staff member everywhere; False if already suspended."""
        ...

    def clear(self, session: Session, *, staff_id: str, actor: str, now: float) -> bool:
        """Lift a suspension; False if there was none."""
        ...

    def after_commit(self, staff_id: str, now: float) -> None:
        """Called once the change is committed (to make this process act on it at once)."""
        ...


class NoStaffControl:
    """Before issue 5: nothing is suspended and nothing can be; the console says so."""

    available = False

    def suspended(self, session: Session, staff_ids: Iterable[str]) -> set[str]:
        return set()

    def suspend(self, session: Session, *, staff_id: str, actor: str, reason: str, now: float) -> bool:
        raise NotImplementedError("staff binding (issue 5) is not installed in this HQ")

    def clear(self, session: Session, *, staff_id: str, actor: str, now: float) -> bool:
        raise NotImplementedError("staff binding (issue 5) is not installed in this HQ")

    def after_commit(self, staff_id: str, now: float) -> None:
        return None


@dataclass(frozen=True)
class Acknowledgement:
    staff_id: str
    policy_version: int | None
    device_id: str
    outlet_id: str | None
    hostname: str | None
    at: float
    policy_hash: str | None = None  # of the policy text shown to the staff member, when known


class AckSource(Protocol):
    def acknowledgements(
        self, session: Session, *, version: int | None, outlet: str | None, limit: int
    ) -> list[Acknowledgement]:
        """Newest first."""
        ...


def _claims(body: dict[str, Any]) -> dict[str, Any]:
    """A signed acknowledgement travels as {"document": {...}, "signature"}; the claims are inside."""
    document = body.get("document")
    return document if isinstance(document, dict) else body


def staff_of(body: dict[str, Any]) -> str | None:
    """The staff id an event names (issue 5 writes ``staff_id``; its signed documents say ``staff``)."""
    body = _claims(body)
    for key in ("staff_id", "staff"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value[:64]
    return None


def _version(body: dict[str, Any]) -> int | None:
    body = _claims(body)
    for key in ("policy_version", "version"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


class EventAcks:
    """Acknowledgements as the agent reports them: ``policy.acknowledged`` events from the PC."""

    def acknowledgements(
        self, session: Session, *, version: int | None, outlet: str | None, limit: int
    ) -> list[Acknowledgement]:
        stmt = (
            select(StoredEvent, Device.outlet_id, Device.hostname)
            .outerjoin(Device, Device.id == StoredEvent.device_id)
            .where(StoredEvent.kind == ACK_KIND)
        )
        if outlet:
            stmt = stmt.where(Device.outlet_id == outlet)
        found: list[Acknowledgement] = []
        # Filtering on the version happens here (bodies differ in shape), so read in bounded pages.
        for event, outlet_id, hostname in session.execute(stmt.order_by(StoredEvent.pk.desc()).limit(limit * 4)):
            ack = ack_of_event(event, outlet_id=outlet_id, hostname=hostname)
            if ack is None or (version is not None and ack.policy_version != version):
                continue
            found.append(ack)
            if len(found) >= limit:
                break
        return found


def ack_of_event(event: StoredEvent, *, outlet_id: str | None, hostname: str | None) -> Acknowledgement | None:
    """The acknowledgement a ``policy.acknowledged`` event reports, or None if it names no staff."""
    body = event.body if isinstance(event.body, dict) else {}
    staff = staff_of(body)
    if staff is None:
        return None
    digest = _claims(body).get("policy_hash")
    return Acknowledgement(staff, _version(body), event.device_id, outlet_id, hostname, event.created,
                           digest if isinstance(digest, str) else None)


def signed_in_staff(session: Session) -> list[tuple[str, str, str, str]]:
    """(staff id, device id, outlet, hostname) of staff signed in on a live PC, per its last heartbeat."""
    stmt = select(Device.staff, Device.id, Device.outlet_id, Device.hostname).where(
        Device.staff.is_not(None), Device.revoked_at.is_(None)
    )
    return [(row[0] or "", row[1], row[2], row[3]) for row in session.execute(stmt.order_by(Device.outlet_id))]
