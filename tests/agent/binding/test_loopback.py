"""The loopback proof endpoint for the waybill web page: real HTTP on 127.0.0.1, real peer lookup."""

from __future__ import annotations

import http.client
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent.binding import peer
from agent.binding.loopback import LoopbackEndpoint
from agent.binding.peer import linux_peer_check, socket_owner_uid, windows_peer_check
from tests.agent.binding.live_hq import LiveHq, free_port, live_hq
from tests.agent.binding.test_binding_manager import URL, Agent, verify

ORIGIN = "https://waybill.example"


@pytest.fixture
def signed_in(tmp_path: Path) -> Iterator[tuple[LiveHq, Agent]]:
    with live_hq(tmp_path / "hq") as hq:
        hq.staff("S001")
        agent = Agent(hq, tmp_path)
        agent.sign_in_and_acknowledge()
        yield hq, agent


def allow_our_uid(uid: int) -> bool:
    return uid == os.geteuid()


@pytest.fixture
def endpoint(signed_in: tuple[LiveHq, Agent]) -> Iterator[tuple[LoopbackEndpoint, int]]:
    _hq, agent = signed_in
    server = LoopbackEndpoint(agent.manager, linux_peer_check(allow_our_uid))
    port = free_port()
    server.apply(port, (ORIGIN,))
    yield server, port
    server.stop()


def call(port: int, method: str = "POST", body: Any = None, *, host: str | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    sent = {"Host": host or f"127.0.0.1:{port}", "Content-Type": "application/json", **(headers or {})}
    data = json.dumps(body if body is not None else {"method": "GET", "url": URL}).encode()
    conn.request(method, "/v1/proof", body=data if method == "POST" else None, headers=sent)
    response = conn.getresponse()
    raw = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(raw) if raw else {}


def test_an_allowed_page_gets_a_proof_hq_accepts(signed_in: tuple[LiveHq, Agent],
                                                 endpoint: tuple[LoopbackEndpoint, int]) -> None:
    hq, _agent = signed_in
    status, headers, body = call(endpoint[1], headers={"Origin": ORIGIN})
    assert status == 200 and headers["access-control-allow-origin"] == ORIGIN and headers["vary"] == "Origin"
    assert headers["cache-control"] == "no-store"
    assert verify(hq, hq.gateway_key(), body["headers"])["decision"] == "allow"


def test_the_cors_preflight_names_the_origin_and_private_network_access(
        endpoint: tuple[LoopbackEndpoint, int]) -> None:
    status, headers, _ = call(endpoint[1], "OPTIONS", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Private-Network": "true"})
    assert status == 204 and headers["access-control-allow-origin"] == ORIGIN
    assert headers["access-control-allow-methods"] == "POST"
    assert headers["access-control-allow-private-network"] == "true"


def test_another_origin_is_refused_before_and_at_the_request(endpoint: tuple[LoopbackEndpoint, int]) -> None:
    for method in ("OPTIONS", "POST"):
        status, headers, body = call(endpoint[1], method, headers={"Origin": "https://evil.example"})
        assert status == 403 and body["error"] == "origin_not_allowed" and "access-control-allow-origin" not in headers


def test_a_rebound_host_name_is_refused(endpoint: tuple[LoopbackEndpoint, int]) -> None:
    status, _, body = call(endpoint[1], host=f"evil.example:{endpoint[1]}", headers={"Origin": ORIGIN})
    assert status == 403 and body["error"] == "bad_host"
    assert call(endpoint[1], host=f"localhost:{endpoint[1]}")[0] == 200


def test_only_json_posts_to_the_one_path(endpoint: tuple[LoopbackEndpoint, int]) -> None:
    port = endpoint[1]
    status, _, body = call(port, headers={"Content-Type": "text/plain"})
    assert status == 415 and body["error"] == "json_required"
    assert call(port, body={"method": "GET"})[2]["error"] == "invalid_argument"
    assert call(port, body={"method": "BREW", "url": URL})[0] == 400
    assert call(port, "GET")[0] == 405
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("POST", "/v1/other", body=b"{}", headers={"Content-Type": "application/json"})
    assert conn.getresponse().status == 404


def test_a_desktop_client_without_origin_is_served(endpoint: tuple[LoopbackEndpoint, int]) -> None:
    status, headers, body = call(endpoint[1])
    assert status == 200 and "access-control-allow-origin" not in headers and body["staff"] == "S001"


def test_another_os_user_is_refused(signed_in: tuple[LiveHq, Agent]) -> None:
    _hq, agent = signed_in
    server = LoopbackEndpoint(agent.manager, linux_peer_check(lambda uid: uid != os.geteuid()))
    port = free_port()
    server.apply(port, (ORIGIN,))
    try:
        status, _, body = call(port, headers={"Origin": ORIGIN})
        assert status == 403 and body["error"] == "forbidden"
    finally:
        server.stop()


def test_nobody_signed_in_and_the_endpoint_switched_off(signed_in: tuple[LiveHq, Agent],
                                                        endpoint: tuple[LoopbackEndpoint, int]) -> None:
    _hq, agent = signed_in
    agent.manager.signout()
    status, _, body = call(endpoint[1], headers={"Origin": ORIGIN})
    assert status == 401 and body["error"] == "not_signed_in"
    server, port = endpoint
    server.apply(0, ())
    with pytest.raises(ConnectionRefusedError):
        call(port)


def test_the_kernel_names_the_owner_of_a_loopback_client_socket() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        with socket.create_connection(listener.getsockname()) as client:
            server_port, client_port = listener.getsockname()[1], client.getsockname()[1]
            assert socket_owner_uid(server_port, client_port) == os.geteuid()
            assert socket_owner_uid(server_port, client_port + 1 if client_port < 65535 else 1) is None


def test_the_windows_check_compares_the_socket_owner_with_the_console_user(monkeypatch: pytest.MonkeyPatch) -> None:
    import psutil

    conn = SimpleNamespace(laddr=SimpleNamespace(port=50123), raddr=SimpleNamespace(port=47111), pid=4242)
    users = {4242: "OUTLET-PC\\clerk"}
    monkeypatch.setattr(psutil, "net_connections", lambda kind: [conn])
    monkeypatch.setattr(psutil, "Process", lambda pid: SimpleNamespace(username=lambda: users[pid]))
    check = windows_peer_check(lambda: {"clerk"})
    assert check(47111, 50123)
    assert not check(47111, 50124)
    users[4242] = "OUTLET-PC\\intruder"
    assert not check(47111, 50123)
    users[4242] = "NT AUTHORITY\\SYSTEM"
    assert check(47111, 50123)
    assert peer.default_peer_check(lambda: set())  # the Linux check on this machine
