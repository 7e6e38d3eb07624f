from __future__ import annotations

import getpass
import logging
import os
import socket
import threading
from collections import namedtuple
from collections.abc import Iterator
from typing import Any

import pytest

from agent.sensors.connections import FakeSocketTable, Socket
from agent.sensors.observations import RemoteSession
from agent.sensors.sessions import SessionSensor, is_local_host, session_from_user
from agent.sensors.win_sessions import client_ip, rdp_sessions

# The shape psutil.users() returns (psutil._common.suser).
suser = namedtuple("suser", ["name", "terminal", "host", "started", "pid"])


def no_platform(_now: float) -> list[RemoteSession]:
    return []


@pytest.fixture
def vnc_listener() -> Iterator[socket.socket]:
    """A real listener on the first free port of the VNC range, as x11vnc would hold it."""
    for port in range(5900, 5907):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        sock.listen(4)
        yield sock
        sock.close()
        return
    pytest.fail("every port of 5900-5906 on 127.0.0.1 is taken")


def _connect(listener: socket.socket) -> tuple[socket.socket, socket.socket]:
    client = socket.create_connection(listener.getsockname())
    served, _ = listener.accept()
    return client, served


def test_inbound_vnc_connection_is_a_remote_session(vnc_listener: socket.socket) -> None:
    sessions: list[RemoteSession] = []
    sensor = SessionSensor(sessions.append, users=lambda: [], platform_sessions=no_platform)
    assert sensor.poll(now=10.0) == []
    client, served = _connect(vnc_listener)
    try:
        (session,) = sensor.poll(now=11.0)
        assert session == RemoteSession(user=getpass.getuser(), kind="vnc", source_ip="127.0.0.1", observed_at=11.0)
        assert sessions == [session]
        assert sensor.poll(now=12.0) == []  # the same connection is not new
        assert sensor.current(now=13.0) == [
            RemoteSession(user=getpass.getuser(), kind="vnc", source_ip="127.0.0.1", observed_at=13.0)
        ]
    finally:
        client.close()
        served.close()
    assert sensor.poll(now=14.0) == []
    assert sensor.current(now=14.0) == []
    client, served = _connect(vnc_listener)
    try:
        assert [s.kind for s in sensor.poll(now=15.0)] == ["vnc"]  # a new connection is a new session
    finally:
        client.close()
        served.close()


def test_only_the_listening_side_counts_not_our_own_client(vnc_listener: socket.socket) -> None:
    # Both ends are on this PC here; only the accepted socket (local port 59xx) is a session.
    client, served = _connect(vnc_listener)
    try:
        sensor = SessionSensor(lambda _s: None, users=lambda: [], platform_sessions=no_platform)
        assert len(sensor.current()) == 1
    finally:
        client.close()
        served.close()


def test_rdp_port_maps_to_rdp_kind(vnc_listener: socket.socket) -> None:
    port = vnc_listener.getsockname()[1]
    client, served = _connect(vnc_listener)
    try:
        sensor = SessionSensor(
            lambda _s: None, users=lambda: [], platform_sessions=no_platform, remote_ports={port: "rdp"}
        )
        assert [s.kind for s in sensor.current()] == ["rdp"]
    finally:
        client.close()
        served.close()


USERS = [
    suser("clerk", "tty1", "", 1.0, 100),
    suser("clerk", ":0", ":0", 1.0, 101),
    suser("clerk", "pts/3", "tmux(1234).%0", 1.0, 102),
    suser("ops", "pts/0", "203.0.113.7", 2.0, 200),
    suser("ops", "pts/1", "jump.example.net", 3.0, 201),
    suser("ops", "pts/2", "2001:db8::5", 4.0, 202),
    suser("ops", "pts/4", "127.0.0.1", 5.0, 203),
]


def test_users_with_a_remote_host_are_ssh_sessions_on_linux() -> None:
    sessions = [session_from_user(u, platform_name="linux", now=7.0) for u in USERS]
    assert [(s.user, s.kind, s.source_ip, s.host) for s in sessions] == [
        ("clerk", "tty", None, None),
        ("clerk", "tty", None, None),
        ("clerk", "tty", None, None),
        ("ops", "ssh", "203.0.113.7", None),
        ("ops", "ssh", None, "jump.example.net"),
        ("ops", "ssh", "2001:db8::5", None),
        ("ops", "tty", None, None),
    ]
    assert all(s.observed_at == 7.0 for s in sessions)


def test_users_with_a_host_are_rdp_sessions_on_windows() -> None:
    console = session_from_user(suser("clerk", None, None, 1.0, None), platform_name="win32", now=1.0)
    remote = session_from_user(suser("clerk", None, "198.51.100.23", 1.0, None), platform_name="win32", now=1.0)
    assert (console.kind, console.source_ip) == ("tty", None)
    assert (remote.kind, remote.source_ip) == ("rdp", "198.51.100.23")


def test_local_host_forms() -> None:
    for host in ("", "  ", ":0", ":0.0", ":pts/1:S.0", "tmux(99).%1", "localhost", "127.0.0.1", "::1"):
        assert is_local_host(host), host
    for host in ("10.0.0.9", "jump.example.net", "2001:db8::5"):
        assert not is_local_host(host), host


def test_poll_reports_users_once_and_again_after_they_come_back() -> None:
    present = list(USERS[:1] + USERS[3:4])
    sensor = SessionSensor(lambda _s: None, users=lambda: list(present), platform_sessions=no_platform,
                           platform_name="linux")
    assert [(s.user, s.kind) for s in sensor.poll()] == [("clerk", "tty"), ("ops", "ssh")]
    assert sensor.poll() == []
    present.pop()
    assert sensor.poll() == []
    present.append(USERS[3])
    assert [(s.user, s.kind) for s in sensor.poll()] == [("ops", "ssh")]


def test_a_failing_source_is_logged_once_and_the_others_still_report(
    vnc_listener: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_users() -> list[Any]:
        raise OSError("utmp unreadable")

    caplog.set_level(logging.WARNING)
    client, served = _connect(vnc_listener)
    try:
        sensor = SessionSensor(lambda _s: None, users=broken_users, platform_sessions=no_platform)
        assert [s.kind for s in sensor.poll()] == ["vnc"]
        sensor.poll()
        sensor.poll()
    finally:
        client.close()
        served.close()
    assert caplog.text.count("session source 'users' failed") == 1


class FakeWts:
    """The two win32ts calls, answering like pywin32 does (dicts, tuples of address bytes)."""

    def __init__(self, sessions: list[dict[str, Any]], info: dict[int, dict[int, Any]]) -> None:
        self.sessions = sessions
        self.info = info

    def WTSEnumerateSessions(
        self, server: int, version: int = 1, reserved: int = 0
    ) -> tuple[dict[str, Any], ...]:
        return tuple(self.sessions)

    def WTSQuerySessionInformation(self, server: int, session_id: int, info_class: int) -> Any:
        answers = self.info[session_id]
        if isinstance(answers, Exception):
            raise answers
        return answers[info_class]


def _address(*ipv4: int) -> dict[str, Any]:
    return {"AddressFamily": 2, "Address": (0, 0, *ipv4, *([0] * 14))}


WTS = FakeWts(
    sessions=[
        {"SessionId": 0, "WinStationName": "Services", "State": 4},
        {"SessionId": 1, "WinStationName": "Console", "State": 0},
        {"SessionId": 2, "WinStationName": "RDP-Tcp#3", "State": 0},
        {"SessionId": 3, "WinStationName": "RDP-Tcp#4", "State": 4},  # disconnected: nobody attached
        {"SessionId": 4, "WinStationName": "RDP-Tcp#5", "State": 1},
        {"SessionId": 5, "WinStationName": "RDP-Tcp#6", "State": 0},  # ends while queried
        {"SessionId": 65536, "WinStationName": "RDP-Tcp", "State": 6},  # the listener
    ],
    info={
        1: {16: 0, 5: "clerk", 10: "", 14: None},
        2: {16: 2, 5: "clerk", 10: "GANG-LAPTOP", 14: _address(198, 51, 100, 23)},
        3: {16: 2, 5: "ops", 10: "OPS-PC", 14: _address(10, 0, 0, 8)},
        4: {16: 2, 5: "", 10: "UNKNOWN-PC", 14: {"AddressFamily": 23, "Address": tuple(range(20))}},
        5: RuntimeError("(7022, 'WTSQuerySessionInformation', 'session does not exist')"),  # type: ignore[dict-item]
    },
)


def test_wts_rdp_sessions_are_parsed_from_the_api() -> None:
    sessions = rdp_sessions(5.0, api=WTS)
    assert sessions == [
        RemoteSession(user="clerk", kind="rdp", source_ip="198.51.100.23", observed_at=5.0, host="GANG-LAPTOP"),
        RemoteSession(user=None, kind="rdp", source_ip=None, observed_at=5.0, host="UNKNOWN-PC"),
    ]


def test_client_address_parsing() -> None:
    assert client_ip(_address(192, 0, 2, 1)) == "192.0.2.1"
    assert client_ip(None) is None
    assert client_ip({"AddressFamily": 2, "Address": (0, 0, 1)}) is None
    assert client_ip({"AddressFamily": 23, "Address": tuple(range(20))}) is None


def test_windows_rdp_login_is_reported_once_from_wts_and_users() -> None:
    users = [suser("clerk", None, "198.51.100.23", 1.0, None), suser("clerk", None, None, 1.0, None)]
    sensor = SessionSensor(
        lambda _s: None, users=lambda: users, platform_sessions=lambda now: rdp_sessions(now, api=WTS),
        platform_name="win32",
    )
    got = sensor.current(now=9.0)
    assert sorted(((s.kind, s.user, s.source_ip, s.host) for s in got), key=repr) == sorted(
        [
            ("rdp", "clerk", "198.51.100.23", "GANG-LAPTOP"),
            ("rdp", None, None, "UNKNOWN-PC"),
            ("tty", "clerk", None, None),
        ],
        key=repr,
    )


def test_worker_thread_reports_and_stops(vnc_listener: socket.socket) -> None:
    got = threading.Event()
    sensor = SessionSensor(lambda _s: got.set(), users=lambda: [], platform_sessions=no_platform, interval_s=0.05)
    sensor.start()
    client, served = _connect(vnc_listener)
    try:
        assert got.wait(5)
        assert sensor.name == "tg-sensor-sessions"
    finally:
        client.close()
        served.close()
        assert sensor.stop()


def test_owners_are_asked_only_for_inbound_remote_desktop_sockets() -> None:
    def sock(local_port: int, remote_port: int | None, status: str = "ESTABLISHED") -> Socket:
        return Socket(pid=None, local_ip="10.0.0.5", local_port=local_port,
                      remote_ip="203.0.113.9" if remote_port else None, remote_port=remote_port, status=status,
                      protocol="tcp", inode=local_port * 10 + (remote_port or 0))

    table = FakeSocketTable(
        [sock(5900, None, "LISTEN"), sock(5900, 40001), sock(443, 40002), sock(51000, 5900), sock(22, None, "LISTEN")],
        owners={(5900, 40001): os.getpid(), (443, 40002): 1},
    )
    sensor = SessionSensor(lambda _s: None, users=lambda: [], platform_sessions=no_platform, lister=table)
    assert [(s.kind, s.source_ip, s.user) for s in sensor.current(now=1.0)] == [
        ("vnc", "203.0.113.9", getpass.getuser())
    ]
    assert table.owner_lookups == 1
