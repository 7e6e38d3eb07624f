"""The staff directory as the HQ console uses it (hq.console.staff_link's StaffControl and AckSource).

Calls run in the console's transaction; ``after_commit`` then makes this HQ process act at once
(the directory re-reads changed staff), so an analyst's suspension is effective before the page
reloads rather than at the next poll.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hq.binding.models import PolicyAcknowledgement, StaffMember
from hq.db import Device
from hq.staff.directory import StaffDirectory
from hq.staff.store import StaffError, clear_staff, suspend_staff
from hq.store.audit import OUTCOME_OK, record_audit


class DirectoryControl:
    available = True

    def __init__(self, directory: StaffDirectory) -> None:
        self._directory = directory

    def suspended(self, session: Session, staff_ids: Iterable[str]) -> set[str]:
        ids = list(set(staff_ids))
        if not ids:
            return set()
        stmt = select(StaffMember.id).where(StaffMember.id.in_(ids), StaffMember.suspended_at.is_not(None))
        return set(session.scalars(stmt))

    def suspend(self, session: Session, *, staff_id: str, actor: str, reason: str, now: float) -> bool:
        try:
            done = suspend_staff(session, staff_id=staff_id, reason=reason or f"suspended by {actor}", now=now)
        except StaffError as exc:
            raise LookupError(str(exc)) from None
        if done:
            record_audit(session, action="staff_suspend", outcome=OUTCOME_OK, at=now,
                         detail=f"staff {staff_id} by analyst {actor}")
        return done

    def clear(self, session: Session, *, staff_id: str, actor: str, now: float) -> bool:
        try:
            done = clear_staff(session, staff_id=staff_id, now=now)
        except StaffError as exc:
            raise LookupError(str(exc)) from None
        if done:
            record_audit(session, action="staff_clear", outcome=OUTCOME_OK, at=now,
                         detail=f"staff {staff_id} by analyst {actor}")
        return done

    def after_commit(self, staff_id: str, now: float) -> None:
        self._directory.poll()


class RegisterAcks:
    """Acknowledgements from the register table (device-signed, checked when they arrived)."""

    def acknowledgements(self, session: Session, *, version: int | None, outlet: str | None,
                         limit: int) -> list[Any]:
        from hq.console.staff_link import Acknowledgement  # the console's record type

        stmt = (select(PolicyAcknowledgement, Device.hostname)
                .outerjoin(Device, Device.id == PolicyAcknowledgement.device_id))
        if version is not None:
            stmt = stmt.where(PolicyAcknowledgement.policy_version == version)
        if outlet:
            stmt = stmt.where(PolicyAcknowledgement.outlet_id == outlet)
        rows = session.execute(stmt.order_by(PolicyAcknowledgement.acknowledged_at.desc()).limit(limit))
        return [Acknowledgement(ack.staff_id, ack.policy_version, ack.device_id, ack.outlet_id, hostname,
                                ack.acknowledged_at, ack.policy_hash) for ack, hostname in rows]
