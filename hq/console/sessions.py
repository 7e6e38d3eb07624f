"""Console sessions: a random cookie whose SHA-256 names a row, with the CSRF token of that session.

Rows live in the database so every HQ replica can serve the next page. The role is read from the
analyst row on every request, so disabling an analyst or changing a role takes effect at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hq.console.tables import Analyst, ConsoleSession

COOKIE = "tg_console"
IDLE_S = 30 * 60.0
ABSOLUTE_S = 12 * 3600.0
# last_seen is written at most this often: a page view is a read, not a write.
TOUCH_EVERY_S = 60.0
MAX_COOKIE_LENGTH = 128


@dataclass(frozen=True)
class SignedIn:
    analyst_id: str
    role: str
    csrf_token: str
    token_hash: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_session(session: Session, *, analyst_id: str, remote_addr: str | None, now: float) -> tuple[str, str]:
    """Store a new session; return (cookie value, CSRF token)."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    session.add(
        ConsoleSession(
            token_hash=_hash(token),
            analyst_id=analyst_id,
            csrf_token=csrf,
            created_at=now,
            last_seen=now,
            expires_at=now + ABSOLUTE_S,
            remote_addr=remote_addr,
        )
    )
    return token, csrf


def resolve(session: Session, *, cookie: str | None, now: float) -> SignedIn | None:
    """The signed-in analyst of a cookie, or None when it is unknown, expired, idle or disabled."""
    if not cookie or len(cookie) > MAX_COOKIE_LENGTH:
        return None
    row = session.execute(
        select(ConsoleSession, Analyst)
        .join(Analyst, Analyst.id == ConsoleSession.analyst_id)
        .where(ConsoleSession.token_hash == _hash(cookie))
    ).first()
    if row is None:
        return None
    stored, analyst = row
    if stored.expires_at <= now or stored.last_seen + IDLE_S <= now or analyst.disabled_at is not None:
        session.delete(stored)
        return None
    if now - stored.last_seen >= TOUCH_EVERY_S:
        stored.last_seen = now
    return SignedIn(
        analyst_id=analyst.id, role=analyst.role, csrf_token=stored.csrf_token, token_hash=stored.token_hash
    )


def close_session(session: Session, *, token_hash: str) -> None:
    session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == token_hash))


def purge_expired(session: Session, *, now: float) -> int:
    result = session.execute(
        delete(ConsoleSession).where(
            (ConsoleSession.expires_at <= now) | (ConsoleSession.last_seen + IDLE_S <= now)
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
