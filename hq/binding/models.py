"""The tables of session binding, on the same declarative Base as hq.db (one metadata, one migration history).

Staff names are personal data of employees (not of customers): they are kept here, at HQ, and
never sent to agents or written to any log.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Double, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hq.db import DEVICE_ID_LENGTH, Base

STAFF_ACTIVE = "active"
STAFF_DISABLED = "disabled"


class StaffMember(Base):
    __tablename__ = "staff"
    __table_args__ = (Index("ix_staff_changed", "changed_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    outlet_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255))
    # argon2id, in the PHC string format (parameters and salt travel with the hash).
    password_hash: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=STAFF_ACTIVE)
    suspended_at: Mapped[float | None] = mapped_column(Double, default=None)
    suspended_reason: Mapped[str | None] = mapped_column(String(255), default=None)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[float | None] = mapped_column(Double, default=None)
    created_at: Mapped[float] = mapped_column(Double)
    # Bumped by every change a serving HQ must notice (suspend, clear, disable, outlet move):
    # it polls this column, so a CLI suspension takes effect within a fraction of a second.
    changed_at: Mapped[float] = mapped_column(Double)


class StaffSession(Base):
    __tablename__ = "staff_sessions"
    __table_args__ = (
        Index("ix_staff_sessions_device", "device_id", "issued_at"),
        Index("ix_staff_sessions_staff", "staff_id", "issued_at"),
        Index("ix_staff_sessions_ended", "ended_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[str] = mapped_column(String(DEVICE_ID_LENGTH))
    outlet_id: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[float] = mapped_column(Double)
    refreshed_at: Mapped[float] = mapped_column(Double)
    expires_at: Mapped[float] = mapped_column(Double)
    ended_at: Mapped[float | None] = mapped_column(Double, default=None)
    end_reason: Mapped[str | None] = mapped_column(String(64), default=None)


class PolicyAcknowledgement(Base):
    """The acknowledgement register: who acknowledged which policy text, where and when."""

    __tablename__ = "policy_acks"
    __table_args__ = (
        UniqueConstraint("staff_id", "policy_hash", "device_id", "acknowledged_at", name="uq_policy_acks"),
        Index("ix_policy_acks_staff", "staff_id", "policy_hash"),
    )

    pk: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    staff_id: Mapped[str] = mapped_column(String(64))
    policy_hash: Mapped[str] = mapped_column(String(64))
    policy_version: Mapped[int | None] = mapped_column(Integer, default=None)
    device_id: Mapped[str] = mapped_column(String(DEVICE_ID_LENGTH))
    outlet_id: Mapped[str] = mapped_column(String(64))
    acknowledged_at: Mapped[float] = mapped_column(Double)
    received_at: Mapped[float] = mapped_column(Double)
    # The device's signature over the acknowledgement document, kept as evidence.
    document: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(String(128))


class GatewayKey(Base):
    """API keys of business-system gateways that may call /v1/verify (only their SHA-256 is kept)."""

    __tablename__ = "gateway_keys"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Double)
    revoked_at: Mapped[float | None] = mapped_column(Double, default=None)


class StaffBaseline(Base):
    """Each account's own share of other-outlet waybill queries, learned before it is judged."""

    __tablename__ = "staff_baselines"

    staff_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_query_at: Mapped[float] = mapped_column(Double)
    queries: Mapped[int] = mapped_column(BigInteger, default=0)
    other_outlet: Mapped[int] = mapped_column(BigInteger, default=0)
    learned_at: Mapped[float | None] = mapped_column(Double, default=None)
    share: Mapped[float | None] = mapped_column(Double, default=None)
    updated_at: Mapped[float] = mapped_column(Double)
