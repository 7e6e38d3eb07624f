"""Alembic migrations for both engines: `terminal-guard-hq migrate`, and serve upgrades on start.

Every table HQ has is declared in one of MODEL_MODULES, all on hq.db.Base; a table declared
anywhere else, or one without a migration, fails tests/hq/test_hq_migrations.py.

A database made before migrations existed (by create_all) has the tables of revision 0001 and
no alembic_version row: it is stamped 0001 and upgraded from there.

A table declared in the models but missing from every migration is still created (with a loud
warning) so a developer's new table works before its migration is written; the schema test,
which runs the migrations alone, fails until it is. Columns get no such help.
"""

from __future__ import annotations

import fcntl
import importlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, inspect, text

log = logging.getLogger(__name__)

MODEL_MODULES = ("hq.db", "hq.console.tables", "hq.siem.tables")
LEGACY_REVISION = "0001"
LEGACY_TABLE = "devices"  # present in every database HQ ever made
# Any fixed 64-bit number: the PostgreSQL advisory lock that makes concurrent starts migrate once.
PG_LOCK_KEY = 0x7467_6871_6D69_6772
HERE = Path(__file__).resolve().parent


def model_metadata() -> MetaData:
    """hq.db.Base.metadata with every model module imported, so it holds every HQ table."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
    from hq.db import Base

    return Base.metadata


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"{HERE / 'versions'}: no migration revisions found")
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@dataclass(frozen=True)
class Upgraded:
    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """Two processes starting on one SQLite file take turns (PostgreSQL uses an advisory lock)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lock_transaction(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY - 2**63})


def _create_unmigrated_tables(connection: Connection) -> None:
    metadata = model_metadata()
    existing = set(inspect(connection).get_table_names())
    missing = [table for name, table in metadata.tables.items() if name not in existing]
    if missing:
        log.warning(
            "tables without a migration, created directly: %s; write one with `python -m hq.migrations revision`",
            ", ".join(table.name for table in missing),
        )
        metadata.create_all(connection, tables=missing)


def upgrade(engine: Engine, revision: str = "head") -> Upgraded:
    """Bring the database to ``revision`` in one transaction (on PostgreSQL, DDL included)."""
    with _sqlite_file_lock(engine), engine.begin() as connection:
        _lock_transaction(connection)
        before = MigrationContext.configure(connection).get_current_revision()
        config = alembic_config(connection)
        if before is None and inspect(connection).has_table(LEGACY_TABLE):
            log.info("database predates migrations: stamping revision %s", LEGACY_REVISION)
            command.stamp(config, LEGACY_REVISION)
        command.upgrade(config, revision)
        if revision == "head":
            _create_unmigrated_tables(connection)
        after = MigrationContext.configure(connection).get_current_revision()
    if after is None:
        raise RuntimeError("the migration left no revision recorded")
    if after != before:
        log.info("database migrated from %s to %s", before or "empty", after)
    return Upgraded(before=before, after=after)
