"""The Linux socket table (sock_diag, /proc/net text, owners by inode) against real sockets,
compared with psutil's own table; the shared table and the fallbacks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from agent.sensors import sock_diag
from agent.sensors.connections import FakeSocketTable, SharedSocketTable, Socket, SocketLister
from agent.sensors.linux_sockets import LinuxSocketTable, is_useful
from agent.sensors.proc_net import AddressCache, parse_table
from agent.sensors.socket_owners import SocketOwners

Spawn = Callable[..., subprocess.Popen[str]]
Key = tuple[str, int, str | None, int | None, str, str]


def key(sock: Socket) -> Key:
    return (sock.local_ip, sock.local_port, sock.remote_ip, sock.remote_port, sock.status, sock.protocol)


class Sockets:
    """Real sockets of every kind the sensors meet, held open for one test."""

    def __init__(self) -> None:
        self.held: list[socket.socket] = []
        self.listener = self._listen(socket.AF_INET, "127.0.0.1")
        self.client, self.served = self._pair(self.listener)
        self.listener6 = self._listen(socket.AF_INET6, "::1")
        self.client6, self.served6 = self._pair(self.listener6)
        self.udp = self._hold(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        self.udp.connect(("127.0.0.1", self.listener.getsockname()[1]))
        self.unconnected_udp = self._hold(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        self.unconnected_udp.bind(("127.0.0.1", 0))

    def _hold(self, sock: socket.socket) -> socket.socket:
        self.held.append(sock)
        return sock

    def _listen(self, family: int, host: str) -> socket.socket:
        sock = self._hold(socket.socket(family, socket.SOCK_STREAM))
        sock.bind((host, 0))
        sock.listen(4)
        return sock

    def _pair(self, listener: socket.socket) -> tuple[socket.socket, socket.socket]:
        client = self._hold(socket.create_connection(listener.getsockname()[:2]))
        served, _ = listener.accept()
        return client, self._hold(served)

    def identities(self) -> set[tuple[str, int, str | None, int | None]]:
        """Local and remote address of each held socket. A port alone is not enough: sockets of
        earlier tests (TIME_WAIT, or accepted by another listener on a reused port) share it."""
        found = set()
        for sock in self.held:
            local = sock.getsockname()
            try:
                remote: tuple[str | None, int | None] = sock.getpeername()[:2]
            except OSError:  # a listener or an unconnected UDP socket
                remote = (None, None)
            found.add((local[0], local[1], *remote))
        return found

    def close(self) -> None:
        for sock in self.held:
            sock.close()


@pytest.fixture
def sockets() -> Iterator[Sockets]:
    held = Sockets()
    yield held
    held.close()


def mine(sock: Socket, held: Sockets) -> bool:
    return (sock.local_ip, sock.local_port, sock.remote_ip, sock.remote_port) in held.identities()


def ours(table: list[Socket], held: Sockets) -> set[Key]:
    return {key(s) for s in table if mine(s, held)}


def psutil_view(held: Sockets) -> set[Key]:
    return {key(s) for s in SocketLister("inet").list() if mine(s, held) and is_useful(s)}


def test_sock_diag_lists_the_same_sockets_as_psutil(sockets: Sockets) -> None:
    table = LinuxSocketTable()
    listed = ours(table.list(), sockets)
    assert table.sources == dict.fromkeys(("tcp", "tcp6", "udp", "udp6"), "sock_diag")
    assert listed == psutil_view(sockets)
    port, port6 = sockets.listener.getsockname()[1], sockets.listener6.getsockname()[1]
    assert ("127.0.0.1", port, None, None, psutil.CONN_LISTEN, "tcp") in listed
    assert ("::1", port6, None, None, psutil.CONN_LISTEN, "tcp") in listed
    client_port = sockets.client.getsockname()[1]
    assert ("127.0.0.1", client_port, "127.0.0.1", port, psutil.CONN_ESTABLISHED, "tcp") in listed
    assert ("127.0.0.1", sockets.udp.getsockname()[1], "127.0.0.1", port, psutil.CONN_NONE, "udp") in listed


def test_unusable_sockets_are_left_out(sockets: Sockets) -> None:
    # An unconnected UDP socket has no peer for either sensor to judge.
    local = sockets.unconnected_udp.getsockname()
    assert not [s for s in LinuxSocketTable().list() if s.protocol == "udp" and (s.local_ip, s.local_port) == local]


def test_text_tables_give_what_sock_diag_gives(sockets: Sockets) -> None:
    text = LinuxSocketTable(netlink=False)
    assert text.sources["tcp"] == "text"
    assert ours(text.list(), sockets) == ours(LinuxSocketTable().list(), sockets)


def test_a_table_sock_diag_refuses_is_read_as_text(
    sockets: Sockets, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = sock_diag.dump

    def no_udp(family: int, protocol: str, states: int) -> list[Socket]:
        if protocol == "udp":
            raise OSError(2, "sock_diag: No such file or directory")  # udp_diag not loaded
        return real(family, protocol, states)

    monkeypatch.setattr(sock_diag, "dump", no_udp)
    caplog.set_level("INFO")
    table = LinuxSocketTable()
    assert ours(table.list(), sockets) == psutil_view(sockets)
    table.list()
    assert table.sources == {"tcp": "sock_diag", "tcp6": "sock_diag", "udp": "text", "udp6": "text"}
    assert caplog.text.count("sock_diag cannot dump udp ") == 1


def test_unreadable_proc_net_falls_back_to_psutil(sockets: Sockets, tmp_path: Path) -> None:
    table = LinuxSocketTable(proc_net=tmp_path / "no-proc-net", netlink=False)
    assert ours(table.list(), sockets) == {key(s) for s in SocketLister("inet").list() if mine(s, sockets)}
    assert set(table.sources.values()) == {"psutil"}
    with_pids = table.with_owners(s for s in table.list() if mine(s, sockets))
    assert {s.pid for s in with_pids} == {os.getpid()}


def test_owners_are_found_only_when_asked_and_match_psutil(sockets: Sockets) -> None:
    owners = SocketOwners()
    table = LinuxSocketTable(owners=owners)
    listed = [s for s in table.list() if mine(s, sockets)]
    assert owners.walks == 0 and all(s.pid is None for s in listed)
    resolved = table.with_owners(listed)
    assert owners.walks == 1
    by_psutil = {key(s): s.pid for s in SocketLister("inet").list()}
    assert {key(s): s.pid for s in resolved} == {key(s): by_psutil[key(s)] for s in resolved}
    assert {s.pid for s in resolved} == {os.getpid()}
    table.with_owners(listed)
    assert owners.walks == 1  # remembered, checked with one readlink each


def test_owner_of_a_child_process_socket(
    spawn: Spawn, python_script: Callable[[str], Path], python_exe: str, sockets: Sockets
) -> None:
    port = sockets.listener.getsockname()[1]
    child = spawn([python_exe, str(python_script("client.py"))], connect=f"127.0.0.1:{port}")
    table = LinuxSocketTable()
    outbound = [s for s in table.list() if s.remote_port == port and s.status == psutil.CONN_ESTABLISHED]
    owners = {s.pid for s in table.with_owners(outbound)}
    assert child.pid in owners


def test_owner_is_looked_up_again_once_it_lets_go(sockets: Sockets) -> None:
    # The socket passes to two children and this process lets go of its copy: the lower pid is the
    # owner (as psutil names it); when that child ends, the other one is. Two children, not this
    # process and one child, because pids wrap and a child's pid may be below ours.
    sock = socket.create_connection(sockets.listener.getsockname())
    local_port, server_port = sock.getsockname()[1], sockets.listener.getsockname()[1]
    children = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], pass_fds=(sock.fileno(),))
                for _ in range(2)]
    sock.close()
    first, second = sorted(children, key=lambda child: child.pid)
    try:
        owners = SocketOwners()
        table = LinuxSocketTable(owners=owners)

        def owner() -> int | None:
            (found,) = table.with_owners(s for s in table.list()
                                         if (s.local_port, s.remote_port) == (local_port, server_port))
            return found.pid

        assert owner() == first.pid
        first.kill()
        first.wait()
        assert owner() == second.pid
        assert owners.walks == 2
    finally:
        for child in children:
            child.kill()
            child.wait()


def test_missing_owner_is_retried_later_not_on_every_tick() -> None:
    clock = [100.0]
    owners = SocketOwners(retry_s=30, clock=lambda: clock[0])
    nobody = 4_000_000_001  # no socket has this inode
    assert owners.lookup({nobody}) == {nobody: None}
    assert owners.lookup({nobody}) == {nobody: None}
    assert owners.walks == 1
    clock[0] += 31
    owners.lookup({nobody})
    assert owners.walks == 2
    owners.retain([])  # the socket is gone: nothing is kept about it
    clock[0] += 1
    owners.lookup({nobody})
    assert owners.walks == 3


TCP6_TEXT = b"\n".join([
    b"  sl  local_address                         remote_address                        st tx_queue ...",
    b"   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A"
    b" 00000000:00000000 00:00000000 00000000     0        0 1111 1 0000000000000000 100 0 0 10 0",
    b"   1: 0000000000000000FFFF00000100007F:9E49 0000000000000000FFFF00000100007F:1F90 01"
    b" 00000000:00000000 00:00000000 00000000  1000        0 2222 1 0000000000000000 20 4 30 10 -1",
    b"   2: 00000000000000000000000001000000:0016 00000000000000000000000001000000:D431 06"
    b" 00000000:00000000 03:00000F9C 00000000     0        0 0 3 0000000000000000",
    b"   3: garbage",
])


def test_text_table_parsing_follows_psutil_conventions() -> None:
    parsed = list(parse_table(TCP6_TEXT, "tcp", socket.AF_INET6, AddressCache()))
    assert [(key(s), s.inode) for s in parsed] == [
        (("::", 8080, None, None, psutil.CONN_LISTEN, "tcp"), 1111),
        (("127.0.0.1", 40521, "127.0.0.1", 8080, psutil.CONN_ESTABLISHED, "tcp"), 2222),  # IPv4-mapped
        (("::1", 22, "::1", 54321, psutil.CONN_TIME_WAIT, "tcp"), 0),
    ]


def test_shared_table_lists_once_for_sensors_ticking_together() -> None:
    clock = [10.0]
    source = FakeSocketTable([Socket(None, "127.0.0.1", 5900, None, None, psutil.CONN_LISTEN, "tcp")])
    shared = SharedSocketTable(source, max_age_s=1.0, clock=lambda: clock[0])
    assert shared.list() == shared.list() == source.sockets
    clock[0] += 0.5
    shared.list()
    assert source.listings == 1
    clock[0] += 0.6
    shared.list()
    assert source.listings == 2
