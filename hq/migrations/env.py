"""Alembic's entry point. HQ hands it an open connection (see hq.migrations); there is no alembic.ini."""

from __future__ import annotations

from alembic import context

from hq.migrations import model_metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("HQ migrations run through hq.migrations.upgrade or `terminal-guard-hq migrate`")

context.configure(
    connection=connection,
    target_metadata=model_metadata(),
    # SQLite cannot ALTER most things in place; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
