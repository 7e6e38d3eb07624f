"""Chaos fixtures: a real HQ process on loopback (SQLite) and an in-process view of its database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.harness import HqView
from tests.hq_server import HqServer


@pytest.fixture
def hq(tmp_path: Path) -> Iterator[HqServer]:
    with HqServer(data_dir=tmp_path / "hq", extra_args=("--silent-after-s", "30")) as server:
        yield server


@pytest.fixture
def view(hq: HqServer) -> Iterator[HqView]:
    view = HqView(hq)
    try:
        yield view
    finally:
        view.close()
