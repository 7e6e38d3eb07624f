"""The schema HQ had before migrations: devices, enrollment tokens, events, audit, policies.

A database made by that HQ (create_all, no alembic_version) is stamped with this revision.

Revision ID: 0001
Revises:
Create Date: 2026-05-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here on purpose: a migration describes the schema of its day, not of hq.db today.
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column("pk", SERIAL, nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("remote_addr", sa.String(length=64), nullable=True),
        sa.Column("path", sa.String(length=255), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("pk"),
    )
    op.create_index("ix_audit_at", "audit", ["at"], unique=False)
    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("outlet_id", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("os", sa.String(length=255), nullable=False),
        sa.Column("agent_version", sa.String(length=64), nullable=False),
        sa.Column("enrolled_at", sa.Double(), nullable=False),
        sa.Column("revoked_at", sa.Double(), nullable=True),
        sa.Column("revoked_reason", sa.String(length=255), nullable=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_heartbeat", sa.Double(), nullable=True),
        sa.Column("heartbeat_count", sa.BigInteger(), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=True),
        sa.Column("interval_s", sa.Double(), nullable=True),
        sa.Column("spool_depth", sa.BigInteger(), nullable=True),
        sa.Column("staff", sa.String(length=64), nullable=True),
        sa.Column("lost_events", JSON, nullable=True),
        sa.Column("posture", JSON, nullable=True),
        sa.Column("silent", sa.Boolean(), nullable=False),
        sa.Column("silent_since", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_devices_outlet_id", "devices", ["outlet_id"], unique=False)
    op.create_index("ix_devices_revoked_at", "devices", ["revoked_at"], unique=False)
    op.create_table(
        "enrollment_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("outlet_id", sa.String(length=64), nullable=False),
        sa.Column("uses_left", sa.Integer(), nullable=False),
        sa.Column("uses_total", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_table(
        "events",
        sa.Column("pk", SERIAL, nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("created", sa.Double(), nullable=False),
        sa.Column("received_at", sa.Double(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("body", JSON, nullable=False),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("device_id", "event_id", name="uq_events_device_event"),
    )
    op.create_index("ix_events_kind", "events", ["kind"], unique=False)
    op.create_index("ix_events_received", "events", ["received_at"], unique=False)
    op.create_table(
        "policies",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("issued_at", sa.String(length=64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )


def downgrade() -> None:
    op.drop_table("policies")
    op.drop_index("ix_events_received", table_name="events")
    op.drop_index("ix_events_kind", table_name="events")
    op.drop_table("events")
    op.drop_table("enrollment_tokens")
    op.drop_index("ix_devices_revoked_at", table_name="devices")
    op.drop_index("ix_devices_outlet_id", table_name="devices")
    op.drop_table("devices")
    op.drop_index("ix_audit_at", table_name="audit")
    op.drop_table("audit")
