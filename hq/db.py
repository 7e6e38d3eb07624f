"""Database engine, sessions and the HQ tables (SQLite by default, PostgreSQL by URL).

Times are unix seconds stored as doubles: one representation for both dialects, cheap to compare
in SQL (the silent monitor adds intervals to them) and trivially turned into ISO text for people.
The schema is made and upgraded by the Alembic migrations in hq.migrations.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Double,
    Engine,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from hq.settings import normalize_db_url

JsonType = JSON().with_variant(JSONB(), "postgresql")

DEVICE_ID_LENGTH = 64


class Base(DeclarativeBase):
    pass


class EnrollmentToken(Base):
    __tablename__ = "enrollment_tokens"

    # Only the SHA-256 of a token is kept: a copy of the database cannot enroll anything.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    outlet_id: Mapped[str] = mapped_column(String(64))
    uses_left: Mapped[int] = mapped_column(Integer)
    uses_total: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Double)
    expires_at: Mapped[float] = mapped_column(Double)


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(DEVICE_ID_LENGTH), primary_key=True)
    outlet_id: Mapped[str] = mapped_column(String(64), index=True)
    public_key: Mapped[str] = mapped_column(String(64))
    hostname: Mapped[str] = mapped_column(String(255))
    os: Mapped[str] = mapped_column(String(255))
    agent_version: Mapped[str] = mapped_column(String(64))
    enrolled_at: Mapped[float] = mapped_column(Double)
    revoked_at: Mapped[float | None] = mapped_column(Double, index=True, default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(255), default=None)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_heartbeat: Mapped[float | None] = mapped_column(Double, default=None)
    heartbeat_count: Mapped[int] = mapped_column(BigInteger, default=0)
    policy_version: Mapped[int | None] = mapped_column(Integer, default=None)
    interval_s: Mapped[float | None] = mapped_column(Double, default=None)
    spool_depth: Mapped[int | None] = mapped_column(BigInteger, default=None)
    staff: Mapped[str | None] = mapped_column(String(64), default=None)
    lost_events: Mapped[dict[str, int] | None] = mapped_column(JsonType, default=None)
    # os users, remote sessions, clock offset, self CPU/RSS: posture shown to the security team.
    posture: Mapped[dict[str, Any] | None] = mapped_column(JsonType, default=None)
    silent: Mapped[bool] = mapped_column(Boolean, default=False)
    silent_since: Mapped[float | None] = mapped_column(Double, default=None)


class StoredEvent(Base):
    __tablename__ = "events"
    # Ids are unique per device, not globally: event ids are time-ordered and guessable, so a
    # global key would let one device pre-claim another's ids and have its real events dropped
    # as "duplicates". Per device, a device can only collide with itself.
    __table_args__ = (
        UniqueConstraint("device_id", "event_id", name="uq_events_device_event"),
        Index("ix_events_received", "received_at"),
        Index("ix_events_kind", "kind"),
    )

    pk: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(DEVICE_ID_LENGTH))
    event_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(Integer)
    created: Mapped[float] = mapped_column(Double)
    received_at: Mapped[float] = mapped_column(Double)
    # "agent" for what a device sent, "hq" for what HQ itself concluded (silence, unenrolment):
    # a device cannot forge an HQ alert by choosing a kind.
    origin: Mapped[str] = mapped_column(String(16))
    body: Mapped[dict[str, Any]] = mapped_column(JsonType)


class AuditRecord(Base):
    __tablename__ = "audit"
    __table_args__ = (Index("ix_audit_at", "at"),)

    pk: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[float] = mapped_column(Double)
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64), default=None)
    device_id: Mapped[str | None] = mapped_column(String(DEVICE_ID_LENGTH), default=None)
    remote_addr: Mapped[str | None] = mapped_column(String(64), default=None)
    path: Mapped[str | None] = mapped_column(String(255), default=None)
    detail: Mapped[str | None] = mapped_column(Text, default=None)
    # Identical failures within one flush are stored once with a count (see hq.audit_log).
    count: Mapped[int] = mapped_column(Integer, default=1)
    last_at: Mapped[float] = mapped_column(Double)


class PolicyRecord(Base):
    __tablename__ = "policies"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    issued_at: Mapped[str] = mapped_column(String(64))
    # The signed document kept as its canonical JSON text, so what is served is byte for byte
    # what was signed (a JSONB round trip may renormalise numbers or reject some strings).
    document: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(String(128))


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the CLI and the console read while the server writes; NORMAL sync is durable
    # across process crashes, which is the failure HQ has to survive.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    url = normalize_db_url(url)
    if url.startswith("sqlite"):
        # A 30 s busy timeout: writers queue behind each other instead of failing.
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def make_sessions(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def create_schema(engine: Engine) -> None:
    """Create or upgrade the schema to the newest migration (what serve and the CLI do on start)."""
    from hq.migrations import upgrade  # imported here: the migrations import this module's Base

    upgrade(engine)


# The binding tables live in their own module on the same Base; importing it here puts them in
# Base.metadata wherever the schema is made or compared (create_all, Alembic).
from hq.binding import models as _binding_models  # noqa: E402, F401
