"""Binding rows: staff sessions, the acknowledgement register and gateway keys."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from agent.binding.documents import AckClaims
from hq.binding.models import GatewayKey, PolicyAcknowledgement, StaffSession
from hq.store.events import _insert

GATEWAY_KEY_BYTES = 32


# --- sessions -------------------------------------------------------------------------------


def start_session(session: Session, *, sid: str, staff_id: str, device_id: str, outlet_id: str, now: float,
                  expires_at: float) -> None:
    session.add(StaffSession(id=sid, staff_id=staff_id, device_id=device_id, outlet_id=outlet_id, issued_at=now,
                             refreshed_at=now, expires_at=expires_at))


def end_device_sessions(session: Session, *, device_id: str, reason: str, now: float) -> list[str]:
    """End every live session of a device (one signed-in staff per terminal); return their ids."""
    live = list(session.scalars(select(StaffSession.id).where(
        StaffSession.device_id == device_id, StaffSession.ended_at.is_(None), StaffSession.expires_at > now)))
    if live:
        session.execute(update(StaffSession).where(StaffSession.id.in_(live))
                        .values(ended_at=now, end_reason=reason).execution_options(synchronize_session=False))
    return live


def end_session(session: Session, *, sid: str, device_id: str, reason: str, now: float) -> bool:
    result = session.execute(
        update(StaffSession)
        .where(StaffSession.id == sid, StaffSession.device_id == device_id, StaffSession.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason[:64])
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def extend_session(session: Session, *, sid: str, now: float, expires_at: float) -> None:
    session.execute(update(StaffSession).where(StaffSession.id == sid)
                    .values(refreshed_at=now, expires_at=expires_at).execution_options(synchronize_session=False))


def get_session(session: Session, *, sid: str) -> StaffSession | None:
    return session.get(StaffSession, sid)


def ended_since(session: Session, *, since: float) -> list[tuple[str, float]]:
    """(session id, expires at) of sessions ended at or after ``since``."""
    rows = session.execute(select(StaffSession.id, StaffSession.expires_at).where(StaffSession.ended_at >= since))
    return [(row[0], row[1]) for row in rows]


def device_signins_since(session: Session, *, device_id: str, since: float) -> list[tuple[str, float]]:
    rows = session.execute(select(StaffSession.staff_id, StaffSession.issued_at).where(
        StaffSession.device_id == device_id, StaffSession.issued_at >= since))
    return [(row[0], row[1]) for row in rows]


def list_sessions(session: Session, *, staff_id: str | None = None, limit: int = 1000) -> list[StaffSession]:
    stmt = select(StaffSession)
    if staff_id is not None:
        stmt = stmt.where(StaffSession.staff_id == staff_id)
    return list(session.scalars(stmt.order_by(StaffSession.issued_at.desc()).limit(limit)))


# --- the acknowledgement register -----------------------------------------------------------


def record_ack(session: Session, *, ack: AckClaims, device_id: str, outlet_id: str, received_at: float) -> bool:
    """Store an acknowledgement once (a resent event is a no-op); True when it was new."""
    stmt = (
        _insert(session)(PolicyAcknowledgement)
        .values(staff_id=ack.staff, policy_hash=ack.policy_hash, policy_version=ack.policy_version,
                device_id=device_id, outlet_id=outlet_id, acknowledged_at=ack.acknowledged_at,
                received_at=received_at, document=json.dumps(ack.document, sort_keys=True, ensure_ascii=False),
                signature=ack.signature)
        .on_conflict_do_nothing(index_elements=["staff_id", "policy_hash", "device_id", "acknowledged_at"])
        .returning(PolicyAcknowledgement.pk)
    )
    return session.execute(stmt).first() is not None


def has_ack(session: Session, *, staff_id: str, policy_hash: str) -> bool:
    stmt = select(PolicyAcknowledgement.pk).where(PolicyAcknowledgement.staff_id == staff_id,
                                                  PolicyAcknowledgement.policy_hash == policy_hash).limit(1)
    return session.scalar(stmt) is not None


def list_acks(session: Session, *, staff_id: str | None = None, limit: int = 1000) -> list[PolicyAcknowledgement]:
    stmt = select(PolicyAcknowledgement)
    if staff_id is not None:
        stmt = stmt.where(PolicyAcknowledgement.staff_id == staff_id)
    return list(session.scalars(stmt.order_by(PolicyAcknowledgement.acknowledged_at.desc()).limit(limit)))


# --- gateway keys ---------------------------------------------------------------------------


def hash_gateway_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


def create_gateway_key(session: Session, *, name: str, now: float) -> str:
    key = "tgw_" + secrets.token_urlsafe(GATEWAY_KEY_BYTES)
    session.add(GatewayKey(key_hash=hash_gateway_key(key), name=name, created_at=now))
    return key


def revoke_gateway_key(session: Session, *, name: str, now: float) -> int:
    result = session.execute(update(GatewayKey).where(GatewayKey.name == name, GatewayKey.revoked_at.is_(None))
                             .values(revoked_at=now).execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


def active_gateway_keys(session: Session) -> dict[str, str]:
    rows = session.execute(select(GatewayKey.key_hash, GatewayKey.name).where(GatewayKey.revoked_at.is_(None)))
    return {row[0]: row[1] for row in rows}


def gateway_key_rows(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(GatewayKey).order_by(GatewayKey.created_at))
    return [{"name": row.name, "created_at": row.created_at, "revoked_at": row.revoked_at} for row in rows]
