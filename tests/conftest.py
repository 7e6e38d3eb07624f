"""Shared fixtures: a real PostgreSQL server (tests/pg.py) and a db_url over both databases."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg import PostgresServer, PostgresUnavailable


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Started once per session; FAILS (never skips) when the binaries are missing."""
    try:
        server = PostgresServer().start()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty HQ database: a SQLite file, or a new PostgreSQL database per test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hq.sqlite3'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    try:
        yield url
    finally:
        server.drop_database(url)


@pytest.fixture(autouse=True)
def _qt_garbage_on_the_main_thread(request: pytest.FixtureRequest) -> Iterator[None]:
    """For tests with a QApplication: no automatic garbage collection during the test, one on the
    main thread after it. The test process has many other threads (servers, pollers, workers);
    a collection they trigger could free Qt objects caught in reference cycles off the GUI thread,
    which crashes Qt at a random later moment (gui/gc_guard.py does the same in the tray)."""
    if "qapp" not in request.fixturenames:
        yield
        return
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.collect()
        if was_enabled:
            gc.enable()
