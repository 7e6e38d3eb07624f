"""Enrollment tokens: only their SHA-256 is stored; a use is consumed by one conditional UPDATE."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hq.db import EnrollmentToken

TOKEN_BYTES = 24  # 192 bits of url-safe randomness


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(session: Session, *, outlet_id: str, uses: int, ttl_s: float, now: float) -> str:
    """Store a new token's hash and return the token itself, which exists nowhere else."""
    if uses < 1:
        raise ValueError(f"uses: expected a positive number of uses, got {uses}")
    if ttl_s <= 0:
        raise ValueError(f"ttl: expected a positive duration, got {ttl_s} s")
    # A recognisable prefix, and never a leading "-" that command lines would take for an option.
    token = "tge_" + secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        EnrollmentToken(
            token_hash=hash_token(token),
            outlet_id=outlet_id,
            uses_left=uses,
            uses_total=uses,
            created_at=now,
            expires_at=now + ttl_s,
        )
    )
    return token


def consume_token(session: Session, *, token: str, now: float) -> str | None:
    """Take one use of a valid token and return its outlet, or None.

    The check and the decrement are one statement, so two concurrent enrollments with the last
    use of a token cannot both succeed on either database.
    """
    stmt = (
        update(EnrollmentToken)
        .where(
            EnrollmentToken.token_hash == hash_token(token),
            EnrollmentToken.uses_left > 0,
            EnrollmentToken.expires_at > now,
        )
        .values(uses_left=EnrollmentToken.uses_left - 1)
        .returning(EnrollmentToken.outlet_id)
    )
    return session.execute(stmt).scalar_one_or_none()


RACED = "raced_token"


def token_failure_reason(session: Session, *, token: str, now: float) -> str:
    """Why a token would be refused, for the audit log only (the client is told nothing this precise).

    RACED means it looks usable: it is refused only if a concurrent enrollment took its last use.
    """
    row = session.get(EnrollmentToken, hash_token(token))
    if row is None:
        return "unknown_token"
    if row.expires_at <= now:
        return "expired_token"
    if row.uses_left <= 0:
        return "used_up_token"
    return RACED


def list_tokens(session: Session) -> list[EnrollmentToken]:
    return list(session.scalars(select(EnrollmentToken).order_by(EnrollmentToken.created_at)))
