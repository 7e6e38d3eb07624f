"""In-process HQ for API tests: create_app over a real database (SQLite file or PostgreSQL).

Flushes and silence checks run when a test asks (long periods), so every test is deterministic.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from hq import commands
from hq.app import create_app
from hq.settings import Settings
from hq.state import HqState
from hq.store.tokens import create_token
from tests.hq.device_client import DeviceClient

# Starlette nudges towards httpx2, which is not a dependency here; httpx serves TestClient fine.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
from fastapi.testclient import TestClient  # noqa: E402


@dataclass
class Hq:
    client: TestClient
    state: HqState

    def token(self, outlet: str = "outlet-1", uses: int = 1, ttl_s: float = 3600.0, now: float | None = None) -> str:
        with self.state.sessions.begin() as session:
            return create_token(session, outlet_id=outlet, uses=uses, ttl_s=ttl_s,
                                now=time.time() if now is None else now)

    def device(self, outlet: str = "outlet-1", **fields: Any) -> DeviceClient:
        device = DeviceClient(self.client)
        response = device.enroll(self.token(outlet), **fields)
        assert response.status_code == 200, response.text
        return device

    def audit(self) -> list[dict[str, Any]]:
        self.state.flush()
        return commands.audit(self.state.sessions, since=None, limit=10_000)

    def devices(self) -> dict[str, dict[str, Any]]:
        self.state.flush()
        records = commands.devices(self.state.sessions, silent_after_s=self.state.settings.silent_after_s,
                                   default_interval_s=self.state.settings.heartbeat_interval_s)
        return {record["device_id"]: record for record in records}

    def events(self, **filters: Any) -> list[dict[str, Any]]:
        self.state.flush()
        options: dict[str, Any] = {"since": None, "kind": None, "device_id": None, "limit": 10_000}
        options.update(filters)
        return commands.events(self.state.sessions, **options)


@pytest.fixture
def hq_settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(db_url=db_url, data_dir=tmp_path / "hq-data", flush_interval_s=3600.0, silence_check_s=3600.0)


def start_hq(settings: Settings) -> Iterator[Hq]:
    app = create_app(settings)
    with TestClient(app) as client:
        yield Hq(client=client, state=app.state.hq)


@pytest.fixture
def hq(hq_settings: Settings) -> Iterator[Hq]:
    yield from start_hq(hq_settings)


@pytest.fixture
def make_hq(hq_settings: Settings) -> Iterator[Any]:
    """Start an in-process HQ with settings changed from the defaults above."""
    stack: list[Iterator[Hq]] = []

    def start(**changes: Any) -> Hq:
        generator = start_hq(replace(hq_settings, **changes))
        stack.append(generator)
        return next(generator)

    yield start
    for generator in reversed(stack):
        generator.close()
