"""The audit log of analyst actions: every change made through the console, and every refusal."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hq.console.tables import AnalystAction

OK = "ok"
DENIED = "denied"
FAILED = "failed"


def record_action(
    session: Session,
    *,
    analyst_id: str,
    role: str | None,
    action: str,
    now: float,
    outcome: str = OK,
    target: str | None = None,
    detail: str | None = None,
    remote_addr: str | None = None,
) -> None:
    session.add(
        AnalystAction(
            at=now,
            analyst_id=analyst_id[:64],
            role=role,
            action=action,
            outcome=outcome,
            target=None if target is None else target[:255],
            detail=None if detail is None else detail[:2000],
            remote_addr=remote_addr,
        )
    )


def list_actions(
    session: Session, *, analyst_id: str | None = None, action: str | None = None, limit: int = 500
) -> list[AnalystAction]:
    """Newest first."""
    stmt = select(AnalystAction)
    if analyst_id:
        stmt = stmt.where(AnalystAction.analyst_id == analyst_id)
    if action:
        stmt = stmt.where(AnalystAction.action == action)
    return list(session.scalars(stmt.order_by(AnalystAction.pk.desc()).limit(limit)))
