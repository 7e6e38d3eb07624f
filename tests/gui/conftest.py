"""GUI test fixtures: offscreen Qt, and the agent's real local channel with test handlers."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ["QT_QPA_PLATFORM"] = "offscreen"
if not os.environ.get("XDG_RUNTIME_DIR"):
    # Qt wants a 0700 runtime dir (QLockFile, sockets); CI as root often has none.
    os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="tg-gui-run-")

import pytest
from PySide6.QtWidgets import QApplication

from agent.localchannel.client import AgentClient
from agent.localchannel.server import LocalChannelServer
from gui.i18n import install_translations, remove_translations
from gui.worker import CallRunner
from tests.gui.agent_double import FakeAgent


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="tg-gui-", dir="/tmp"))  # short enough for sun_path
    os.chmod(path, 0o755)  # noqa: S103 - as the agent's socket directory is in production
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def agent() -> FakeAgent:
    return FakeAgent()


@pytest.fixture
def agent_server(agent: FakeAgent, socket_dir: Path) -> Iterator[LocalChannelServer]:
    server = LocalChannelServer(str(socket_dir / "agent.sock"), agent.handlers())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(agent_server: LocalChannelServer) -> AgentClient:
    return AgentClient(agent_server.address, timeout_s=2.0)


@pytest.fixture
def runner(qapp: QApplication, client: AgentClient) -> Iterator[CallRunner]:
    calls = CallRunner(client)
    yield calls
    calls.shutdown()


@pytest.fixture
def use_language(qapp: QApplication) -> Iterator[Callable[[str], None]]:
    """Switch the running app's translations; undone after the test."""
    installed: list[Any] = []

    def switch(lang: str) -> None:
        remove_translations(qapp, installed)
        installed.clear()
        installed.extend(install_translations(qapp, lang))

    yield switch
    remove_translations(qapp, installed)
    install_translations(qapp, "en")  # resets QLocale's default


@pytest.fixture
def english(use_language: Callable[[str], None]) -> None:
    use_language("en")
