"""Abuse fixtures: an in-process HQ (create_app over a real SQLite file) with a helper to enroll
devices, and a real HQ process on loopback for what needs real sockets (slow bodies, races)."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hq import commands
from hq.app import create_app
from hq.settings import Settings
from hq.state import HqState
from hq.store.tokens import create_token
from tests.hq.device_client import DeviceClient
from tests.hq_server import HqServer

SOAK = os.environ.get("TG_SOAK", "") not in ("", "0")


def scaled(bounded: float, soak: float) -> float:
    """The bounded value in `make test`, the soak value under TG_SOAK=1."""
    return soak if SOAK else bounded


# Starlette nudges towards httpx2, which is not a dependency here; httpx serves TestClient fine.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
from fastapi.testclient import TestClient  # noqa: E402


@dataclass
class InProcessHq:
    client: TestClient
    state: HqState

    def token(self, outlet: str = "outlet-1", uses: int = 1, ttl_s: float = 3600.0, now: float | None = None) -> str:
        with self.state.sessions.begin() as session:
            return create_token(session, outlet_id=outlet, uses=uses, ttl_s=ttl_s,
                                now=time.time() if now is None else now)

    def devices(self) -> dict[str, dict[str, Any]]:
        """What `terminal-guard-hq devices` shows, after flushing heartbeat state."""
        self.state.flush()
        records = commands.devices(self.state.sessions, silent_after_s=3600.0, default_interval_s=10.0)
        return {record["device_id"]: record for record in records}

    def device(self, outlet: str = "outlet-1", **fields: str) -> DeviceClient:
        device = DeviceClient(self.client)
        response = device.enroll(self.token(outlet), **fields)
        assert response.status_code == 200, response.text
        return device


def hq_settings(data_dir: Path) -> Settings:
    return hq_settings_for(f"sqlite:///{data_dir / 'hq.sqlite3'}", data_dir)


def hq_settings_for(db_url: str, data_dir: Path) -> Settings:
    return Settings(db_url=db_url, data_dir=data_dir, flush_interval_s=3600.0, silence_check_s=3600.0)


@pytest.fixture
def hq(tmp_path: Path) -> Iterator[InProcessHq]:
    app = create_app(hq_settings(tmp_path / "hq"))
    with TestClient(app) as client:
        yield InProcessHq(client=client, state=app.state.hq)


@pytest.fixture
def hq_any_db(db_url: str, tmp_path: Path) -> Iterator[InProcessHq]:
    """The in-process HQ on SQLite and on PostgreSQL (tests/conftest.py's db_url)."""
    app = create_app(hq_settings_for(db_url, tmp_path / "hq"))
    # A 500 must reach the test as a response (that is what a device would see), not as an exception.
    with TestClient(app, raise_server_exceptions=False) as client:
        yield InProcessHq(client=client, state=app.state.hq)


@pytest.fixture
def hq_process(tmp_path: Path) -> Iterator[HqServer]:
    with HqServer(data_dir=tmp_path / "hq-process") as server:
        yield server
