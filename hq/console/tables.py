"""The console's tables: analysts, their sessions, alert triage, analyst actions and API tokens.

They hang off the one hq.db.Base, so migrations and the schema test see them with the rest.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Double, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hq.db import Base

ANALYST_ID_LENGTH = 64


class Analyst(Base):
    """A member of HQ's security team; never an outlet staff member (those are issue 5's)."""

    __tablename__ = "analysts"

    id: Mapped[str] = mapped_column(String(ANALYST_ID_LENGTH), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    # argon2id, with its parameters inside the encoded string (see hq.console.passwords).
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[float] = mapped_column(Double)
    disabled_at: Mapped[float | None] = mapped_column(Double, default=None)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[float | None] = mapped_column(Double, default=None)
    last_login_at: Mapped[float | None] = mapped_column(Double, default=None)


class ConsoleSession(Base):
    """A signed-in browser. Kept in the database, so any HQ replica can serve the next page."""

    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_analyst", "analyst_id"),)

    # Only the SHA-256 of the cookie: a copy of the database cannot sign anyone in.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    analyst_id: Mapped[str] = mapped_column(String(ANALYST_ID_LENGTH))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Double)
    last_seen: Mapped[float] = mapped_column(Double)
    expires_at: Mapped[float] = mapped_column(Double)
    remote_addr: Mapped[str | None] = mapped_column(String(64), default=None)


class AlertState(Base):
    """Triage of one alert (a stored event); an alert without a row is open."""

    __tablename__ = "alert_states"
    __table_args__ = (Index("ix_alert_states_state", "state"),)

    event_pk: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    state: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[float] = mapped_column(Double)
    analyst_id: Mapped[str] = mapped_column(String(ANALYST_ID_LENGTH))
    note: Mapped[str | None] = mapped_column(String(500), default=None)


class AnalystAction(Base):
    """The audit log of what analysts did (and tried and were refused) in the console."""

    __tablename__ = "analyst_actions"
    __table_args__ = (Index("ix_analyst_actions_at", "at"),)

    pk: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[float] = mapped_column(Double)
    analyst_id: Mapped[str] = mapped_column(String(ANALYST_ID_LENGTH))
    role: Mapped[str | None] = mapped_column(String(16), default=None)
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    target: Mapped[str | None] = mapped_column(String(255), default=None)
    detail: Mapped[str | None] = mapped_column(Text, default=None)
    remote_addr: Mapped[str | None] = mapped_column(String(64), default=None)


class ApiToken(Base):
    """A bearer token for machines (Prometheus scraping /metrics); only its SHA-256 is kept."""

    __tablename__ = "api_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[float] = mapped_column(Double)
    revoked_at: Mapped[float | None] = mapped_column(Double, default=None)
