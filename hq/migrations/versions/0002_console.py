"""Console and ecosystem: analysts, console sessions, alert triage, analyst actions, API tokens, SIEM cursors.

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "analysts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("disabled_at", sa.Double(), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.Double(), nullable=True),
        sa.Column("last_login_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("analyst_id", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("last_seen", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("remote_addr", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_console_sessions_analyst", "console_sessions", ["analyst_id"], unique=False)
    op.create_table(
        "alert_states",
        sa.Column("event_pk", SERIAL, autoincrement=False, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("analyst_id", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("event_pk"),
    )
    op.create_index("ix_alert_states_state", "alert_states", ["state"], unique=False)
    op.create_table(
        "analyst_actions",
        sa.Column("pk", SERIAL, nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("analyst_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("remote_addr", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("pk"),
    )
    op.create_index("ix_analyst_actions_at", "analyst_actions", ["at"], unique=False)
    op.create_table(
        "api_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("revoked_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_table(
        "siem_cursors",
        sa.Column("sink", sa.String(length=255), nullable=False),
        sa.Column("last_pk", SERIAL, nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("sink"),
    )


def downgrade() -> None:
    op.drop_table("siem_cursors")
    op.drop_table("api_tokens")
    op.drop_index("ix_analyst_actions_at", table_name="analyst_actions")
    op.drop_table("analyst_actions")
    op.drop_index("ix_alert_states_state", table_name="alert_states")
    op.drop_table("alert_states")
    op.drop_index("ix_console_sessions_analyst", table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_table("analysts")
