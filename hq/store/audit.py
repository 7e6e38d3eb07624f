"""The audit trail: who tried what, from where, and why it was refused or allowed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from hq.db import AuditRecord

OUTCOME_DENIED = "denied"
OUTCOME_OK = "ok"


def insert_audit(session: Session, *, records: Sequence[dict[str, Any]]) -> None:
    """Write a batch of audit dicts (keys: the AuditRecord columns but pk) in one statement."""
    if records:
        session.execute(insert(AuditRecord), list(records))


def audit_row(
    *,
    action: str,
    outcome: str,
    at: float,
    reason: str | None = None,
    device_id: str | None = None,
    remote_addr: str | None = None,
    path: str | None = None,
    detail: str | None = None,
    count: int = 1,
    last_at: float | None = None,
) -> dict[str, Any]:
    return {
        "action": action,
        "outcome": outcome,
        "at": at,
        "reason": reason,
        "device_id": device_id,
        "remote_addr": remote_addr,
        "path": path,
        "detail": detail,
        "count": count,
        "last_at": at if last_at is None else last_at,
    }


def record_audit(session: Session, **fields: Any) -> None:
    """One audit record written now, for rare operator actions (revoke, publish, token create)."""
    insert_audit(session, records=[audit_row(**fields)])


def list_audit(session: Session, *, since: float | None = None, limit: int = 1000) -> list[AuditRecord]:
    stmt = select(AuditRecord)
    if since is not None:
        stmt = stmt.where(AuditRecord.at >= since)
    newest = list(session.scalars(stmt.order_by(AuditRecord.pk.desc()).limit(limit)))
    return newest[::-1]
