"""The local channel over a real Unix socket: round trips, bad input, peers of other OS users."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import socket
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.localchannel import server as server_module
from agent.localchannel.client import REASON_TIMEOUT, AgentClient, AgentError, AgentUnavailable
from agent.localchannel.protocol import MAX_REQUEST_BYTES, ChannelError
from agent.localchannel.server import LocalChannelServer

NOBODY = pwd.getpwnam("nobody")


def echo(args: dict[str, Any]) -> dict[str, Any]:
    return {"echo": args}


def boom(args: dict[str, Any]) -> dict[str, Any]:
    raise KeyError("deliberate failure")


def raw_exchange(path: str, payload: bytes, *, timeout: float = 3.0) -> list[dict[str, Any]]:
    """Send raw bytes, close our side, and read every line the server answers until it hangs up."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except BrokenPipeError:
            pass  # the server hung up first (oversize): its answer is still readable
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    return [json.loads(line) for line in data.splitlines() if line]


def run_as_user(uid: int, gid: int, job: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Fork, drop to uid/gid for real, run job in the child and bring back its JSON result."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            result = job()
        except BaseException as exc:
            result = {"exception": repr(exc)}
        with os.fdopen(write_fd, "w") as out:
            out.write(json.dumps(result))
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as source:
        text = source.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return dict(json.loads(text))


def client_job(address: str) -> Callable[[], dict[str, Any]]:
    def job() -> dict[str, Any]:
        try:
            return {"result": AgentClient(address, timeout_s=3.0).call("echo", n=1), "uid": os.getuid()}
        except AgentError as exc:
            return {"error": exc.code, "detail": exc.detail, "uid": os.getuid()}
        except AgentUnavailable as exc:
            return {"unavailable": str(exc), "uid": os.getuid()}

    return job


def test_round_trip_returns_the_handler_result(serve: Any) -> None:
    server = serve({"echo": echo})
    client = AgentClient(server.address)
    assert client.call("echo", staff="S001", n=3) == {"echo": {"staff": "S001", "n": 3}}
    assert client.call("echo") == {"echo": {}}
    assert server.requests_served == 2


def test_socket_is_world_connectable_in_a_searchable_directory(socket_dir: Path) -> None:
    address = socket_dir / "sub" / "agent.sock"
    server = LocalChannelServer(str(address), {"echo": echo})
    server.start()
    try:
        assert stat.S_IMODE(os.stat(address).st_mode) == 0o666
        assert stat.S_IMODE(os.stat(address.parent).st_mode) == 0o755
        assert stat.S_ISSOCK(os.stat(address).st_mode)
    finally:
        server.stop()
    assert not address.exists(), "stop() removes the socket it created"


def test_malformed_line_gets_an_error_and_the_connection_keeps_serving(serve: Any) -> None:
    server = serve({"echo": echo})
    answers = raw_exchange(server.address, b'{"id": 1, "op": "echo"\n{"id": 2, "op": "echo", "x": 5}\n')
    assert answers[0]["ok"] is False
    assert answers[0]["error"] == "bad_request"
    assert "not valid JSON" in answers[0]["detail"]
    assert answers[1] == {"id": 2, "ok": True, "result": {"echo": {"x": 5}}}


@pytest.mark.parametrize(
    ("line", "expected_detail"),
    [
        (b"[1, 2]", "must be a JSON object"),
        (b'{"op": "echo"}', "field 'id'"),
        (b'{"id": true, "op": "echo"}', "field 'id'"),
        (b'{"id": 4, "op": 12}', "field 'op'"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
)
def test_requests_of_the_wrong_shape_are_refused_with_the_field_named(
    serve: Any, line: bytes, expected_detail: str
) -> None:
    server = serve({"echo": echo})
    (answer,) = raw_exchange(server.address, line + b"\n")
    assert answer["ok"] is False
    assert answer["error"] == "bad_request"
    assert expected_detail in answer["detail"]


def test_unknown_op_names_the_known_ones(serve: Any) -> None:
    server = serve({"echo": echo, "status": echo})
    with pytest.raises(AgentError) as caught:
        AgentClient(server.address).call("format_disk")
    assert caught.value.code == "unknown_op"
    assert "echo, status" in caught.value.detail


def test_oversize_request_is_refused_and_the_connection_closed(serve: Any) -> None:
    server = serve({"echo": echo})
    big = json.dumps({"id": 9, "op": "echo", "blob": "x" * (MAX_REQUEST_BYTES + 10)}).encode() + b"\n"
    answers = raw_exchange(server.address, big)
    assert len(answers) == 1
    assert answers[0]["error"] == "too_large"
    # ...and the server still serves the next client.
    assert AgentClient(server.address).call("echo", ok=True) == {"echo": {"ok": True}}


def test_oversize_request_without_newline_is_refused_before_it_is_all_buffered(serve: Any) -> None:
    server = serve({"echo": echo})
    answers = raw_exchange(server.address, b"x" * (MAX_REQUEST_BYTES * 4))
    assert answers and answers[0]["error"] == "too_large"


def test_request_just_under_the_cap_is_served(serve: Any) -> None:
    server = serve({"echo": echo})
    head = json.dumps({"id": 1, "op": "echo", "blob": ""}).encode()
    blob = "y" * (MAX_REQUEST_BYTES - len(head))
    assert AgentClient(server.address).call("echo", blob=blob) == {"echo": {"blob": blob}}


def test_handler_exception_gives_internal_error_and_server_keeps_serving(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = serve({"boom": boom, "echo": echo})
    client = AgentClient(server.address)
    with caplog.at_level(logging.ERROR, logger="agent.localchannel.server"), pytest.raises(AgentError) as caught:
        client.call("boom", password="hunter2-secret")
    assert caught.value.code == "internal"
    assert "deliberate failure" not in caught.value.detail, "exception text stays in the agent log"
    assert "deliberate failure" in caplog.text
    assert "hunter2-secret" not in caplog.text, "request arguments are never logged"
    assert client.call("echo", n=2) == {"echo": {"n": 2}}


def test_handler_channel_error_reaches_the_client_with_its_code(serve: Any) -> None:
    def signin(args: dict[str, Any]) -> dict[str, Any]:
        raise ChannelError("not_available", "sign-in to HQ is not available yet")

    server = serve({"signin": signin})
    with pytest.raises(AgentError) as caught:
        AgentClient(server.address).call("signin", staff="S001", password="pw")
    assert (caught.value.code, caught.value.detail) == ("not_available", "sign-in to HQ is not available yet")


def test_handler_returning_a_non_object_is_an_internal_error(serve: Any) -> None:
    server = serve({"bad": lambda args: ["not", "a", "dict"], "unjson": lambda args: {"when": object()}})
    client = AgentClient(server.address)
    for op in ("bad", "unjson"):
        with pytest.raises(AgentError) as caught:
            client.call(op)
        assert caught.value.code == "internal"


def test_connection_from_another_os_user_is_refused_and_logged(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = serve({"echo": echo}, allowed_uids={4242})
    with caplog.at_level(logging.WARNING, logger="agent.localchannel.server"):
        outcome = run_as_user(NOBODY.pw_uid, NOBODY.pw_gid, client_job(server.address))
        deadline = time.monotonic() + 3
        while server.refused_connections == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert outcome["uid"] == NOBODY.pw_uid, "the child really ran as nobody"
    assert outcome.get("error") == "forbidden", outcome
    assert server.refused_connections == 1
    assert server.requests_served == 0
    assert f"uid {NOBODY.pw_uid}" in caplog.text


def test_connection_from_the_allowed_user_is_served(serve: Any) -> None:
    server = serve({"echo": echo}, allowed_uids={NOBODY.pw_uid})
    outcome = run_as_user(NOBODY.pw_uid, NOBODY.pw_gid, client_job(server.address))
    assert outcome == {"result": {"echo": {"n": 1}}, "uid": NOBODY.pw_uid}


def test_console_user_is_allowed_when_no_uids_are_given(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("agent.localchannel.unix.console_uids", lambda: {NOBODY.pw_uid})
    server = serve({"echo": echo})
    outcome = run_as_user(NOBODY.pw_uid, NOBODY.pw_gid, client_job(server.address))
    assert outcome["result"] == {"echo": {"n": 1}}


def test_client_refuses_a_socket_served_by_another_user(socket_dir: Path) -> None:
    """A user who gets a socket to where the tray looks cannot pose as the agent."""
    os.chmod(socket_dir, 0o777)  # noqa: S103 - lets nobody bind its impostor socket here
    path = socket_dir / "fake-agent.sock"
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(NOBODY.pw_gid)
            os.setuid(NOBODY.pw_uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.bind(str(path))
                sock.listen(1)
                os.write(ready_write, b"1")
                sock.settimeout(5)
                conn, _ = sock.accept()
                conn.sendall(b'{"id": null, "ok": true, "result": {"staff": "mallory"}}\n')
                conn.close()
        finally:
            os._exit(0)
    os.close(ready_write)
    assert os.read(ready_read, 1) == b"1"
    try:
        with pytest.raises(AgentError) as caught:
            AgentClient(str(path)).call("status")
        assert caught.value.code == "untrusted_server"
        assert f"uid {NOBODY.pw_uid}" in caught.value.detail
    finally:
        # Unblock the child's accept if the client never connected, then reap it.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as poke, contextlib.suppress(OSError):
            poke.connect(str(path))
        os.waitpid(pid, 0)


def test_client_reports_agent_unavailable_when_nothing_listens(socket_dir: Path) -> None:
    with pytest.raises(AgentUnavailable) as caught:
        AgentClient(str(socket_dir / "absent.sock")).call("status")
    assert "not reachable" in str(caught.value)


def test_client_times_out_on_a_hung_handler_and_the_server_stays_up(serve: Any) -> None:
    release = threading.Event()

    def hang(args: dict[str, Any]) -> dict[str, Any]:
        release.wait(5)
        return {}

    server = serve({"hang": hang, "echo": echo})
    started = time.monotonic()
    with pytest.raises(AgentUnavailable) as caught:
        AgentClient(server.address, timeout_s=0.5).call("hang")
    assert caught.value.reason == REASON_TIMEOUT
    assert time.monotonic() - started < 2.0
    release.set()
    assert AgentClient(server.address).call("echo") == {"echo": {}}


def test_many_clients_at_once_each_get_their_own_answer(serve: Any) -> None:
    server = serve({"echo": echo})
    results: dict[int, dict[str, Any]] = {}

    def call(n: int) -> None:
        results[n] = AgentClient(server.address).call("echo", n=n)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == {n: {"echo": {"n": n}} for n in range(40)}


def test_connections_beyond_the_limit_are_told_busy(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "MAX_CONNECTIONS", 2)
    server = serve({"echo": echo})
    idle = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(2)]
    try:
        for sock in idle:
            sock.connect(server.address)
        time.sleep(0.3)  # both accepted and holding their slot
        with pytest.raises(AgentError) as caught:
            AgentClient(server.address).call("echo")
        assert caught.value.code == "busy"
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 3
    while True:  # slots come back once the idle connections are gone
        try:
            assert AgentClient(server.address).call("echo") == {"echo": {}}
            break
        except AgentError:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_stale_socket_from_a_crashed_agent_is_replaced(socket_dir: Path) -> None:
    path = socket_dir / "agent.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))  # bound, never listening, then closed: what a crash leaves
    server = LocalChannelServer(str(path), {"echo": echo})
    server.start()
    try:
        assert AgentClient(str(path)).call("echo") == {"echo": {}}
    finally:
        server.stop()


def test_second_server_on_a_live_socket_refuses_to_start(serve: Any) -> None:
    first = serve({"echo": echo})
    second = LocalChannelServer(first.address, {"echo": echo})
    with pytest.raises(OSError, match="already listening"):
        second.start()
    assert AgentClient(first.address).call("echo") == {"echo": {}}


def test_a_regular_file_at_the_socket_path_is_never_deleted(socket_dir: Path) -> None:
    path = socket_dir / "agent.sock"
    path.write_text("important")
    with pytest.raises(FileExistsError, match="not a socket"):
        LocalChannelServer(str(path), {}).start()
    assert path.read_text() == "important"


def test_too_long_socket_path_is_a_clear_error(socket_dir: Path) -> None:
    path = socket_dir / ("d" * 120) / "agent.sock"
    with pytest.raises(ValueError, match="longer than 107 bytes"):
        LocalChannelServer(str(path), {}).start()


def test_stop_is_prompt_with_idle_clients_connected(serve: Any) -> None:
    server = serve({"echo": echo})
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    idle.connect(server.address)
    try:
        time.sleep(0.2)
        started = time.monotonic()
        server.stop(timeout=5.0)
        assert time.monotonic() - started < 1.5
        names = {thread.name for thread in threading.enumerate()}
        assert not any(name.startswith("tg-localchannel") for name in names)
    finally:
        idle.close()


def test_server_threads_are_named(serve: Any) -> None:
    server = serve({"echo": echo})
    seen: list[str] = []
    server_handlers = {"who": lambda args: {"thread": threading.current_thread().name}}
    other = LocalChannelServer(server.address + "2", server_handlers)
    other.start()
    try:
        seen.append(AgentClient(other.address).call("who")["thread"])
        assert "tg-localchannel" in {thread.name for thread in threading.enumerate()}
    finally:
        other.stop()
    assert seen[0].startswith("tg-localchannel-conn-")
