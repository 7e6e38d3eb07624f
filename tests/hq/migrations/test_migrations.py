"""Alembic migrations on SQLite and PostgreSQL: the migrated schema is exactly the models' schema."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
import threading
import time

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, inspect, text

import hq
from hq.db import Base, make_engine
from hq.migrations import alembic_config, current_revision, head_revision, upgrade
from hq.store.devices import create_device


def every_hq_table() -> MetaData:
    """Import every module of the hq package, so a table declared anywhere is in the metadata."""
    for module in pkgutil.walk_packages(hq.__path__, "hq."):
        if ".migrations.versions" not in module.name and module.name != "hq.migrations.env":
            importlib.import_module(module.name)
    return Base.metadata


def migrate_only(engine: Engine, revision: str = "head") -> None:
    """The migration scripts alone: no help for tables that have no migration."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def differences(engine: Engine, metadata: MetaData) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def test_migrated_schema_equals_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate_only(engine)
    diff = differences(engine, every_hq_table())
    assert diff == [], f"the models differ from the migrations; write one (python -m hq.migrations revision): {diff}"
    engine.dispose()


def test_the_model_modules_name_every_table() -> None:
    """What serve and the migrations import must hold every table any hq module declares."""
    code = "import json; from hq.migrations import model_metadata; print(json.dumps(sorted(model_metadata().tables)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(done.stdout) == sorted(every_hq_table().tables)


def test_a_database_made_before_migrations_is_stamped_and_upgraded(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate_only(engine, "0001")
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))  # what create_all left behind
    with engine.begin() as connection:
        from sqlalchemy.orm import Session

        with Session(connection) as session:
            create_device(session, outlet_id="o1", public_key="k", hostname="h", os="w", agent_version="1",
                          now=time.time())
            session.commit()
    done = upgrade(engine)
    assert (done.before, done.after) == (None, head_revision())
    assert "analysts" in inspect(engine).get_table_names()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM devices")).scalar() == 1
    assert upgrade(engine).changed is False
    engine.dispose()


def test_downgrade_to_nothing_and_up_again(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate_only(engine)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate_only(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_concurrent_first_starts_migrate_once(db_url: str) -> None:
    engines = [make_engine(db_url) for _ in range(3)]
    results: list[object] = []
    barrier = threading.Barrier(len(engines))

    def start(engine: Engine) -> None:
        barrier.wait()
        try:
            results.append(upgrade(engine))
        except Exception as exc:  # collected, so the assertion below shows it
            results.append(exc)

    threads = [threading.Thread(target=start, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(not isinstance(r, Exception) for r in results), results
    assert sum(r.changed for r in results) == 1  # type: ignore[attr-defined]
    for engine in engines:
        engine.dispose()


@pytest.fixture
def hq_cli(db_url: str, tmp_path: object) -> list[str]:
    return [sys.executable, "-m", "hq.cli", "--db", db_url, "--data-dir", str(tmp_path)]


def test_migrate_command_checks_and_upgrades(hq_cli: list[str]) -> None:
    behind = subprocess.run([*hq_cli, "migrate", "--check", "--json"], capture_output=True, text=True, timeout=60)
    assert behind.returncode == 1 and json.loads(behind.stdout)["current"] is None
    done = subprocess.run([*hq_cli, "migrate"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and f"to {head_revision()}" in done.stdout
    again = subprocess.run([*hq_cli, "migrate", "--check"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "newest" in again.stdout
