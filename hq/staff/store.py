"""Staff rows: keyword-only database functions for the CLI, sign-in and the serving directory."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from agent.localchannel.ops import valid_staff_id
from hq.binding.models import STAFF_ACTIVE, STAFF_DISABLED, StaffMember

MAX_NAME_CHARS = 255
MAX_OUTLET_CHARS = 64


class StaffError(ValueError):
    """A staff operation that cannot be done as asked (unknown id, duplicate, bad field)."""


def check_fields(*, staff_id: str, outlet_id: str, name: str) -> None:
    if not valid_staff_id(staff_id):
        raise StaffError(f"id: {staff_id!r:.80} is not a staff id (letters, digits, . _ -; up to 64, "
                         "starting with a letter or digit)")
    if not outlet_id.strip() or len(outlet_id) > MAX_OUTLET_CHARS:
        raise StaffError(f"outlet: expected an outlet id of 1 to {MAX_OUTLET_CHARS} characters")
    if not name.strip() or len(name) > MAX_NAME_CHARS:
        raise StaffError(f"name: expected 1 to {MAX_NAME_CHARS} characters")


def add_staff(session: Session, *, staff_id: str, outlet_id: str, name: str, password_hash: str,
              now: float) -> StaffMember:
    check_fields(staff_id=staff_id, outlet_id=outlet_id, name=name)
    if session.get(StaffMember, staff_id) is not None:
        raise StaffError(f"id: staff {staff_id} already exists")
    member = StaffMember(id=staff_id, outlet_id=outlet_id, name=name.strip(), password_hash=password_hash,
                         status=STAFF_ACTIVE, failed_attempts=0, created_at=now, changed_at=now)
    session.add(member)
    return member


def get_staff(session: Session, *, staff_id: str) -> StaffMember | None:
    return session.get(StaffMember, staff_id) if valid_staff_id(staff_id) else None


def require_staff(session: Session, *, staff_id: str) -> StaffMember:
    member = get_staff(session, staff_id=staff_id)
    if member is None:
        raise StaffError(f"id: no staff member {staff_id!r:.80}")
    return member


def list_staff(session: Session, *, outlet_id: str | None = None) -> list[StaffMember]:
    stmt = select(StaffMember).order_by(StaffMember.outlet_id, StaffMember.id)
    if outlet_id is not None:
        stmt = stmt.where(StaffMember.outlet_id == outlet_id)
    return list(session.scalars(stmt))


def set_disabled(session: Session, *, staff_id: str, disabled: bool, now: float) -> bool:
    """Disable (or enable again); True when the status changed."""
    member = require_staff(session, staff_id=staff_id)
    status = STAFF_DISABLED if disabled else STAFF_ACTIVE
    if member.status == status:
        return False
    member.status = status
    member.changed_at = now
    return True


def suspend_staff(session: Session, *, staff_id: str, reason: str, now: float) -> bool:
    """Suspend every bound session of the staff member; True when this call suspended them."""
    result = session.execute(
        update(StaffMember)
        .where(StaffMember.id == staff_id, StaffMember.suspended_at.is_(None))
        .values(suspended_at=now, suspended_reason=reason[:255], changed_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        return True
    require_staff(session, staff_id=staff_id)
    return False


def clear_staff(session: Session, *, staff_id: str, now: float) -> bool:
    """Lift a suspension and a lockout; True when there was something to lift."""
    member = require_staff(session, staff_id=staff_id)
    had = member.suspended_at is not None or member.locked_until is not None or member.failed_attempts > 0
    member.suspended_at = None
    member.suspended_reason = None
    member.locked_until = None
    member.failed_attempts = 0
    member.changed_at = now
    return had


def record_failure(session: Session, *, staff_id: str, now: float, max_failures: int, lock_s: float) -> float | None:
    """Count a wrong password; past ``max_failures`` in a row, lock the account. Returns the lock's end."""
    member = session.get(StaffMember, staff_id, with_for_update=True)
    if member is None:
        return None
    member.failed_attempts += 1
    if member.failed_attempts >= max_failures:
        member.failed_attempts = 0
        member.locked_until = now + lock_s
        member.changed_at = now
    return member.locked_until


def record_success(session: Session, *, staff_id: str, password_hash: str | None = None) -> None:
    values: dict[str, object] = {"failed_attempts": 0}
    if password_hash is not None:
        values["password_hash"] = password_hash
    session.execute(update(StaffMember).where(StaffMember.id == staff_id).values(**values)
                    .execution_options(synchronize_session=False))


def changed_since(session: Session, *, since: float) -> list[StaffMember]:
    return list(session.scalars(select(StaffMember).where(StaffMember.changed_at >= since)))
