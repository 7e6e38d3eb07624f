"""Analysts: adding them (CLI), signing them in, and locking an account that is being guessed."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from hq.console.passwords import burn_verify_time, hash_password, needs_rehash, verify_password
from hq.console.roles import check_role
from hq.console.tables import ANALYST_ID_LENGTH, Analyst

MAX_FAILURES = 5
LOCK_S = 300.0
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")


class AnalystError(ValueError):
    """Bad input for an analyst command; the message names the field."""


def check_analyst_id(analyst_id: str) -> str:
    if not 1 <= len(analyst_id) <= ANALYST_ID_LENGTH or not _ID.match(analyst_id):
        raise AnalystError(
            f"id: expected 1 to {ANALYST_ID_LENGTH} letters, digits or . _ @ - (starting with a letter or digit), "
            f"got {analyst_id!r:.80}"
        )
    return analyst_id


def add_analyst(
    session: Session, *, analyst_id: str, role: str, password: str, now: float, replace: bool = False
) -> Analyst:
    """Create an analyst; with ``replace``, reset an existing one's role and password (and unlock it)."""
    check_analyst_id(analyst_id)
    try:
        check_role(role)
    except ValueError as exc:
        raise AnalystError(str(exc)) from None
    try:
        encoded = hash_password(password)
    except ValueError as exc:
        raise AnalystError(str(exc)) from None
    existing = session.get(Analyst, analyst_id)
    if existing is not None and not replace:
        raise AnalystError(f"id: analyst {analyst_id!r} already exists (use --reset to change role and password)")
    if existing is None:
        existing = Analyst(id=analyst_id, created_at=now, failed_logins=0)
        session.add(existing)
    existing.role = role
    existing.password_hash = encoded
    existing.disabled_at = None
    existing.failed_logins = 0
    existing.locked_until = None
    session.flush()
    return existing


def list_analysts(session: Session) -> list[Analyst]:
    return list(session.scalars(select(Analyst).order_by(Analyst.id)))


def disable_analyst(session: Session, *, analyst_id: str, now: float) -> bool:
    """Disable an analyst (their sessions stop working at once); False if already disabled."""
    analyst = session.get(Analyst, analyst_id)
    if analyst is None:
        raise AnalystError(f"id: no analyst {analyst_id!r}")
    if analyst.disabled_at is not None:
        return False
    analyst.disabled_at = now
    return True


@dataclass(frozen=True)
class LoginResult:
    analyst: Analyst | None
    # For the audit log only; the login page says the same thing for every failure.
    reason: str | None


def authenticate(session: Session, *, analyst_id: str, password: str, now: float) -> LoginResult:
    """Check a password; five wrong ones in a row lock the account for five minutes."""
    analyst = session.get(Analyst, analyst_id) if len(analyst_id) <= ANALYST_ID_LENGTH else None
    if analyst is None:
        burn_verify_time(password)
        return LoginResult(None, "unknown_analyst")
    if analyst.disabled_at is not None:
        burn_verify_time(password)
        return LoginResult(None, "disabled")
    if analyst.locked_until is not None and analyst.locked_until > now:
        burn_verify_time(password)
        return LoginResult(None, "locked")
    if not verify_password(analyst.password_hash, password):
        analyst.failed_logins += 1
        if analyst.failed_logins >= MAX_FAILURES:
            analyst.locked_until = now + LOCK_S
            analyst.failed_logins = 0
            return LoginResult(None, "wrong_password_locked")
        return LoginResult(None, "wrong_password")
    analyst.failed_logins = 0
    analyst.locked_until = None
    analyst.last_login_at = now
    if needs_rehash(analyst.password_hash):
        analyst.password_hash = hash_password(password)
    return LoginResult(analyst, None)
