"""The Windows named-pipe channel, run against fake pywin32 modules that emulate pipe semantics."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from agent.localchannel.client import AgentClient, AgentError, AgentUnavailable
from agent.localchannel.server import LocalChannelServer
from agent.localchannel.transport import transport_for
from agent.localchannel.windows import (
    FILE_FLAG_FIRST_PIPE_INSTANCE,
    PIPE_NAME,
    PIPE_REJECT_REMOTE_CLIENTS,
    PIPE_SDDL,
    WindowsPipeTransport,
)
from tests.agent.localchannel import lc_fake_pywin32 as fake

PIPE = PIPE_NAME + "-test"


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> fake.Kernel:
    kernel = fake.Kernel()
    for name, module in fake.install(kernel).items():
        monkeypatch.setitem(sys.modules, name, module)
    return kernel


@pytest.fixture
def pipe_server(kernel: fake.Kernel) -> Iterator[LocalChannelServer]:
    def whoami(args: dict[str, Any]) -> dict[str, Any]:
        return {"args": args, "impersonating": kernel.impersonating() is not None}

    server = LocalChannelServer(PIPE, {"echo": whoami})
    server.start()
    yield server
    server.stop()


def test_pipe_addresses_select_the_windows_transport() -> None:
    assert isinstance(transport_for(PIPE_NAME), WindowsPipeTransport)
    assert PIPE_NAME == "\\\\.\\pipe\\TerminalGuard"


def test_console_user_round_trip_over_the_pipe(kernel: fake.Kernel, pipe_server: LocalChannelServer) -> None:
    with kernel.as_client(fake.CONSOLE_USER):
        result = AgentClient(PIPE).call("echo", staff="S001")
    assert result == {"args": {"staff": "S001"}, "impersonating": False}, "the server reverted to itself"
    assert pipe_server.requests_served == 1


def test_system_is_allowed(kernel: fake.Kernel, pipe_server: LocalChannelServer) -> None:
    service = fake.Identity(pid=7000, sid=fake.SYSTEM_SID, session=0)
    with kernel.as_client(service):
        assert AgentClient(PIPE).call("echo")["args"] == {}


def test_another_users_sid_is_refused_and_logged(
    kernel: fake.Kernel, pipe_server: LocalChannelServer, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="agent.localchannel.server"),
        kernel.as_client(fake.OTHER_USER),
        pytest.raises(AgentError) as caught,
    ):
        AgentClient(PIPE).call("echo")
    assert caught.value.code == "forbidden"
    assert pipe_server.refused_connections == 1
    assert pipe_server.requests_served == 0
    assert fake.OTHER_USER_SID in caplog.text


def test_console_user_is_looked_up_per_connection(kernel: fake.Kernel, pipe_server: LocalChannelServer) -> None:
    """After a user switch the previous console user loses access."""
    with kernel.as_client(fake.CONSOLE_USER):
        AgentClient(PIPE).call("echo")
    kernel.console_session = fake.OTHER_USER.session
    with kernel.as_client(fake.CONSOLE_USER), pytest.raises(AgentError) as caught:
        AgentClient(PIPE).call("echo")
    assert caught.value.code == "forbidden"
    with kernel.as_client(fake.OTHER_USER):
        assert AgentClient(PIPE).call("echo")["args"] == {}


def test_pipe_is_created_first_instance_local_only_without_user_create_rights(
    kernel: fake.Kernel, pipe_server: LocalChannelServer
) -> None:
    first = kernel.created[0]
    assert first.open_mode & FILE_FLAG_FIRST_PIPE_INSTANCE
    assert first.pipe_mode & PIPE_REJECT_REMOTE_CLIENTS
    assert first.sddl == PIPE_SDDL
    user_ace = PIPE_SDDL.split("(")[-1]
    assert user_ace.endswith(";;;AU)")
    mask = int(user_ace.split(";")[2], 16)
    assert mask & 0x1 and mask & 0x2, "users may read and write"
    assert not mask & 0x4, "FILE_CREATE_PIPE_INSTANCE is withheld from users"
    assert "(A;;GA;;;SY)" in PIPE_SDDL and PIPE_SDDL.startswith("D:P"), "protected DACL, SYSTEM full control"


def test_later_instances_drop_the_first_instance_flag(kernel: fake.Kernel, pipe_server: LocalChannelServer) -> None:
    with kernel.as_client(fake.CONSOLE_USER):
        AgentClient(PIPE).call("echo")
        AgentClient(PIPE).call("echo")
    assert len(kernel.created) >= 3
    assert not any(instance.open_mode & FILE_FLAG_FIRST_PIPE_INSTANCE for instance in kernel.created[1:])


def test_back_to_back_calls_always_find_a_listening_instance(
    kernel: fake.Kernel, pipe_server: LocalChannelServer
) -> None:
    with kernel.as_client(fake.CONSOLE_USER):
        for n in range(30):
            assert AgentClient(PIPE).call("echo", n=n)["args"] == {"n": n}


def test_agent_refuses_to_start_next_to_a_squatted_pipe(kernel: fake.Kernel) -> None:
    kernel.squat(PIPE, fake.OTHER_USER)
    with pytest.raises(PermissionError, match="already exists"):
        LocalChannelServer(PIPE, {}).start()


def test_client_refuses_a_pipe_served_outside_session_zero(kernel: fake.Kernel) -> None:
    kernel.squat(PIPE, fake.OTHER_USER)
    with kernel.as_client(fake.CONSOLE_USER), pytest.raises(AgentError) as caught:
        AgentClient(PIPE).call("status")
    assert caught.value.code == "untrusted_server"
    assert "session 2" in caught.value.detail


def test_client_reports_unavailable_when_no_pipe_exists(kernel: fake.Kernel) -> None:
    with pytest.raises(AgentUnavailable, match="nothing is listening"):
        AgentClient(PIPE).call("status")


def test_malformed_and_good_lines_on_one_pipe_connection(kernel: fake.Kernel, pipe_server: LocalChannelServer) -> None:
    transport = WindowsPipeTransport()
    with kernel.as_client(fake.CONSOLE_USER):
        stream = transport.connect(PIPE, 2.0)
    try:
        stream.send_all(b'{"id": 1, "op"\n{"id": 2, "op": "echo", "k": 1}\n', 2.0)
        data = b""
        while data.count(b"\n") < 2:
            data += stream.recv(4096, 2.0)
    finally:
        stream.close()
    first, second = data.splitlines()
    assert b'"error":"bad_request"' in first
    assert b'"id":2,"ok":true' in second


def test_client_read_times_out_when_the_agent_is_slow(kernel: fake.Kernel) -> None:
    release = threading.Event()
    server = LocalChannelServer(PIPE, {"slow": lambda args: {"done": release.wait(5)}})
    server.start()
    try:
        started = time.monotonic()
        with kernel.as_client(fake.CONSOLE_USER), pytest.raises(AgentUnavailable) as caught:
            AgentClient(PIPE, timeout_s=0.4).call("slow")
        assert caught.value.reason == "timeout"
        assert time.monotonic() - started < 2
    finally:
        release.set()
        server.stop()


def test_stop_cancels_the_pending_connect_promptly(kernel: fake.Kernel) -> None:
    server = LocalChannelServer(PIPE, {})
    server.start()
    started = time.monotonic()
    server.stop(timeout=5.0)
    assert time.monotonic() - started < 1.5
    assert all(instance.state == "closed" for instance in kernel.created)
