"""Session binding: staff directory, staff sessions, policy acknowledgement register, gateway keys,
per-account other-outlet baselines.

Revision ID: 0003
Revises: 0002
Create Date: 2026-05-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "staff",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("outlet_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("suspended_at", sa.Double(), nullable=True),
        sa.Column("suspended_reason", sa.String(length=255), nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.Double(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("changed_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_staff_changed", "staff", ["changed_at"], unique=False)
    op.create_index("ix_staff_outlet_id", "staff", ["outlet_id"], unique=False)
    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("outlet_id", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.Double(), nullable=False),
        sa.Column("refreshed_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("ended_at", sa.Double(), nullable=True),
        sa.Column("end_reason", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_staff_sessions_device", "staff_sessions", ["device_id", "issued_at"], unique=False)
    op.create_index("ix_staff_sessions_ended", "staff_sessions", ["ended_at"], unique=False)
    op.create_index("ix_staff_sessions_staff", "staff_sessions", ["staff_id", "issued_at"], unique=False)
    op.create_table(
        "policy_acks",
        sa.Column("pk", SERIAL, nullable=False),
        sa.Column("staff_id", sa.String(length=64), nullable=False),
        sa.Column("policy_hash", sa.String(length=64), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("outlet_id", sa.String(length=64), nullable=False),
        sa.Column("acknowledged_at", sa.Double(), nullable=False),
        sa.Column("received_at", sa.Double(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("staff_id", "policy_hash", "device_id", "acknowledged_at", name="uq_policy_acks"),
    )
    op.create_index("ix_policy_acks_staff", "policy_acks", ["staff_id", "policy_hash"], unique=False)
    op.create_table(
        "gateway_keys",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("revoked_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("key_hash"),
    )
    op.create_table(
        "staff_baselines",
        sa.Column("staff_id", sa.String(length=64), nullable=False),
        sa.Column("first_query_at", sa.Double(), nullable=False),
        sa.Column("queries", sa.BigInteger(), nullable=False),
        sa.Column("other_outlet", sa.BigInteger(), nullable=False),
        sa.Column("learned_at", sa.Double(), nullable=True),
        sa.Column("share", sa.Double(), nullable=True),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("staff_id"),
    )


def downgrade() -> None:
    op.drop_table("staff_baselines")
    op.drop_table("gateway_keys")
    op.drop_index("ix_policy_acks_staff", table_name="policy_acks")
    op.drop_table("policy_acks")
    op.drop_index("ix_staff_sessions_staff", table_name="staff_sessions")
    op.drop_index("ix_staff_sessions_ended", table_name="staff_sessions")
    op.drop_index("ix_staff_sessions_device", table_name="staff_sessions")
    op.drop_table("staff_sessions")
    op.drop_index("ix_staff_outlet_id", table_name="staff")
    op.drop_index("ix_staff_changed", table_name="staff")
    op.drop_table("staff")
