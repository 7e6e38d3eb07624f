"""Fixtures: a short socket directory other users can traverse, and real servers on it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from agent.localchannel.server import Handler, LocalChannelServer


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    # pytest's tmp_path is too long for sun_path and not searchable by other users (0700 parents).
    path = Path(tempfile.mkdtemp(prefix="tg-lc-", dir="/tmp"))
    os.chmod(path, 0o755)  # noqa: S103 - other users must reach the socket, as in production
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def serve(socket_dir: Path) -> Iterator[Callable[..., LocalChannelServer]]:
    servers: list[LocalChannelServer] = []

    def start(handlers: Mapping[str, Handler], *, address: str | None = None, **kwargs: object) -> LocalChannelServer:
        server = LocalChannelServer(address or str(socket_dir / "agent.sock"), handlers, **kwargs)  # type: ignore[arg-type]
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop(timeout=5.0)
