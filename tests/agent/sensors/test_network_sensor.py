from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from agent.sensors.connections import FakeSocketTable, Socket, SocketLister
from agent.sensors.hosts import HostResolver, normalize_ip, parse_host_list
from agent.sensors.network import NetworkSensor, is_approved, unapproved_clients
from agent.sensors.observations import NetworkConnection, ProcessInfo

Spawn = Callable[..., subprocess.Popen[str]]


class LoopbackServer:
    """A real TCP server that accepts and holds connections: the stand-in waybill system."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.host, self.port = self.sock.getsockname()
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True, name="test-loopback-server")
        self._thread.start()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        # close() alone does not wake a thread blocked in accept() on Linux; shutdown() does.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(5)
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    srv = LoopbackServer()
    yield srv
    srv.close()


@pytest.fixture
def relay() -> Iterator[LoopbackServer]:
    srv = LoopbackServer("127.0.0.2")  # all of 127/8 is loopback on Linux
    yield srv
    srv.close()


def _to(conns: list[NetworkConnection], server: LoopbackServer) -> dict[int, NetworkConnection]:
    return {c.process.pid: c for c in conns if c.remote_port == server.port and c.process is not None}


@pytest.fixture
def scraper(
    python_script: Callable[[str], Path], python_exe: str, spawn: Spawn, server: LoopbackServer
) -> subprocess.Popen[str]:
    script = python_script("scrape.py")
    return spawn([python_exe, "scrape.py", "--headless"], connect=server.address, cwd=script.parent)


@pytest.fixture
def approved_client(
    install_tool: Callable[[str], Path], spawn: Spawn, server: LoopbackServer
) -> tuple[Path, subprocess.Popen[str]]:
    client = install_tool("opt/Courier/WaybillClient.exe")
    return client, spawn([str(client), "--outlet", "A101"], connect=server.address)


def test_connection_to_a_protected_host_is_attributed_to_its_process(
    server: LoopbackServer, scraper: subprocess.Popen[str], python_exe: str
) -> None:
    seen: list[NetworkConnection] = []
    sensor = NetworkSensor(seen.append, protected_hosts=["127.0.0.1"])
    conns = _to(sensor.poll(), server)
    conn = conns[scraper.pid]
    assert conn.process is not None
    assert conn.process.cmdline == (python_exe, "scrape.py", "--headless")
    assert conn.process.exe == os.path.realpath(python_exe)
    assert (conn.remote_ip, conn.remote_port, conn.local_ip) == ("127.0.0.1", server.port, "127.0.0.1")
    assert conn.local_port == psutil.Process(scraper.pid).net_connections()[0].laddr.port
    assert (conn.direction, conn.status, conn.protocol) == ("outbound", "ESTABLISHED", "tcp")
    assert conn.remote_group == "protected"
    assert conn.remote_hostname is None  # listed by IP, not by name
    assert conn in seen


def test_server_side_of_the_socket_is_inbound(server: LoopbackServer, scraper: subprocess.Popen[str]) -> None:
    # The scraper's connect returns before the server thread accepts; until then the server side
    # belongs to no process. Under load that gap is long enough for the poll to fall into it.
    deadline = time.monotonic() + 10
    while not server.accepted and time.monotonic() < deadline:
        time.sleep(0.01)
    sensor = NetworkSensor(lambda _c: None, protected_hosts=["127.0.0.1/8"])
    mine = [c for c in sensor.poll() if c.process is not None and c.process.pid == os.getpid()]
    inbound = [c for c in mine if c.local_port == server.port]
    assert inbound and all(c.direction == "inbound" for c in inbound)


def test_each_pid_and_remote_pair_is_reported_once(
    server: LoopbackServer, scraper: subprocess.Popen[str], python_script: Callable[[str], Path],
    python_exe: str, spawn: Spawn,
) -> None:
    sensor = NetworkSensor(lambda _c: None, protected_hosts=["127.0.0.1"])
    assert scraper.pid in _to(sensor.poll(), server)
    assert scraper.pid not in _to(sensor.poll(), server)
    script = python_script("export_waybills.py")
    second = spawn([python_exe, str(script)], connect=server.address)
    fresh = _to(sensor.poll(), server)
    assert list(fresh) == [second.pid]
    assert scraper.pid in _to(sensor.current(), server)  # current() still lists what is present


def test_pair_is_reported_again_once_its_process_has_gone(
    server: LoopbackServer, scraper: subprocess.Popen[str]
) -> None:
    sensor = NetworkSensor(lambda _c: None, protected_hosts=["127.0.0.1"])
    assert scraper.pid in _to(sensor.poll(), server)
    key = (scraper.pid, "127.0.0.1", server.port)
    assert key in sensor._seen
    scraper.kill()
    scraper.wait()
    sensor.poll()
    assert key not in sensor._seen


def test_named_host_is_resolved_and_reported_by_name(server: LoopbackServer, scraper: subprocess.Popen[str]) -> None:
    # "localhost" goes through the system resolver for real.
    sensor = NetworkSensor(lambda _c: None, protected_hosts=["localhost"])
    conn = _to(sensor.poll(), server)[scraper.pid]
    assert conn.remote_hostname == "localhost"
    assert conn.remote_group == "protected"


def test_watched_relay_is_grouped_apart_from_protected_hosts(
    server: LoopbackServer, relay: LoopbackServer, install_tool: Callable[[str], Path], spawn: Spawn
) -> None:
    frpc = install_tool("frp_0.58.1_linux_amd64/frpc")
    tunnel = spawn([str(frpc), "-c", "frpc.toml"], connect=relay.address)
    lookups = {"frp-relay.example.net": ["127.0.0.2"]}
    resolver = HostResolver(lookup=lambda name: lookups[name])
    sensor = NetworkSensor(
        lambda _c: None, protected_hosts=["127.0.0.1"], watched_hosts=["frp-relay.example.net"], resolver=resolver
    )
    conn = _to(sensor.poll(), relay)[tunnel.pid]
    assert (conn.remote_group, conn.remote_hostname) == ("watched", "frp-relay.example.net")
    assert conn.process is not None and conn.process.exe == str(frpc)
    assert unapproved_clients([conn], approved_programs=[]) == []  # a relay is not the protected host


def test_unapproved_program_is_reported_and_approved_one_is_not(
    server: LoopbackServer, scraper: subprocess.Popen[str], approved_client: tuple[Path, subprocess.Popen[str]]
) -> None:
    path, client = approved_client
    conns = list(_to(NetworkSensor(lambda _c: None, protected_hosts=["127.0.0.1"]).poll(), server).values())
    assert {c.process.pid for c in conns if c.process} == {scraper.pid, client.pid}
    by_name = unapproved_clients(conns, ["waybillclient.exe"])
    assert [c.process.pid for c in by_name if c.process] == [scraper.pid]
    by_path = unapproved_clients(conns, [str(path).upper()])
    assert [c.process.pid for c in by_path if c.process] == [scraper.pid]
    nothing_approved = unapproved_clients(conns, [])
    assert {c.process.pid for c in nothing_approved if c.process} == {scraper.pid, client.pid}


def test_connection_table_refused_falls_back_to_each_process(
    server: LoopbackServer, scraper: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # macOS, or Linux without the capability, refuse the system-wide table this root run can read.
    def refuse(kind: str = "inet") -> list[object]:
        raise psutil.AccessDenied()

    monkeypatch.setattr(psutil, "net_connections", refuse)
    lister = SocketLister("inet")
    sensor = NetworkSensor(lambda _c: None, protected_hosts=["127.0.0.1"], lister=lister)
    conn = _to(sensor.poll(), server)[scraper.pid]
    assert lister.fallback
    assert conn.direction == "outbound"


def test_consumer_failure_is_logged_and_other_connections_still_returned(
    server: LoopbackServer, scraper: subprocess.Popen[str], approved_client: tuple[Path, subprocess.Popen[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(_conn: NetworkConnection) -> None:
        raise RuntimeError("spool closed")

    conns = _to(NetworkSensor(broken, protected_hosts=["127.0.0.1"]).poll(), server)
    assert {scraper.pid, approved_client[1].pid} <= set(conns)
    assert "consumer failed" in caplog.text


def test_worker_thread_reports_new_connections(
    server: LoopbackServer, python_script: Callable[[str], Path], python_exe: str, spawn: Spawn
) -> None:
    got = threading.Event()
    pids: list[int] = []

    def out(conn: NetworkConnection) -> None:
        if conn.remote_port == server.port and conn.process is not None:
            pids.append(conn.process.pid)
            got.set()

    sensor = NetworkSensor(out, protected_hosts=["127.0.0.1"], interval_s=0.05)
    sensor.start()
    try:
        assert sensor.name == "tg-sensor-network"
        client = spawn([python_exe, str(python_script("macro.py"))], connect=server.address)
        assert got.wait(5)
        assert pids == [client.pid]
    finally:
        assert sensor.stop()


def test_bad_host_entries_name_the_list_and_index() -> None:
    with pytest.raises(ValueError, match=r"protected_hosts\[1\]: 'https://waybill.example.com/'"):
        parse_host_list(["waybill.example.com", "https://waybill.example.com/"], "protected_hosts")
    with pytest.raises(ValueError, match=r"watched_hosts\[0\]"):
        NetworkSensor(lambda _c: None, protected_hosts=[], watched_hosts=["10.1.2"])
    with pytest.raises(ValueError, match=r"protected_hosts\[0\]: expected a string"):
        parse_host_list([42], "protected_hosts")  # type: ignore[list-item]
    for bad in ("", "host name", "-bad.example.com", "waybill.example.com:443", "a" * 64 + ".com"):
        with pytest.raises(ValueError):
            parse_host_list([bad])


def test_host_list_accepts_names_ips_and_cidrs() -> None:
    hosts = parse_host_list(["Waybill.Example.com.", "10.20.0.0/16", "2001:db8::1", "192.0.2.7", "waybill.example.com"])
    assert hosts.names == ("waybill.example.com",)
    assert [str(n) for n in hosts.networks] == ["10.20.0.0/16", "2001:db8::1/128", "192.0.2.7/32"]


def test_ipv4_mapped_addresses_are_plain_ipv4() -> None:
    assert normalize_ip("::ffff:10.1.2.3") == "10.1.2.3"
    assert normalize_ip("fe80::1%eth0") == "fe80::1"
    assert normalize_ip("not an ip") is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_resolver_caches_until_ttl_and_keeps_last_good_on_failure() -> None:
    clock = FakeClock()
    answers: dict[str, list[str] | OSError] = {"waybill.example.com": ["192.0.2.10", "::ffff:192.0.2.11"]}
    calls: list[str] = []

    def lookup(name: str) -> list[str]:
        calls.append(name)
        answer = answers[name]
        if isinstance(answer, OSError):
            raise answer
        return answer

    resolver = HostResolver(lookup=lookup, ttl_s=60, failure_ttl_s=10, clock=clock)
    assert resolver.addresses("waybill.example.com") == {"192.0.2.10", "192.0.2.11"}
    clock.now += 59
    resolver.addresses("waybill.example.com")
    assert len(calls) == 1
    clock.now += 2
    answers["waybill.example.com"] = socket.gaierror("Temporary failure in name resolution")
    assert resolver.addresses("waybill.example.com") == {"192.0.2.10", "192.0.2.11"}
    assert resolver.failures == 1
    clock.now += 5
    resolver.addresses("waybill.example.com")
    assert len(calls) == 2  # a failure is retried sooner, but not on every tick
    clock.now += 6
    answers["waybill.example.com"] = ["192.0.2.20"]
    assert resolver.addresses("waybill.example.com") == {"192.0.2.20"}


def test_resolver_is_bounded() -> None:
    resolver = HostResolver(lookup=lambda name: ["192.0.2.1"], max_names=3)
    for index in range(10):
        resolver.addresses(f"host{index}.example.com")
    assert len(resolver._entries) == 3
    assert list(resolver._entries) == ["host7.example.com", "host8.example.com", "host9.example.com"]


def test_unresolvable_name_never_matches_and_never_raises() -> None:
    resolver = HostResolver(lookup=lambda name: (_ for _ in ()).throw(socket.gaierror("no such host")))
    sensor = NetworkSensor(lambda _c: None, protected_hosts=["waybill.invalid"], resolver=resolver)
    assert [c for c in sensor.poll() if c.remote_hostname == "waybill.invalid"] == []


def _proc(exe: str | None, name: str = "x") -> ProcessInfo:
    return ProcessInfo(pid=1, name=name, exe=exe)


@pytest.mark.parametrize(
    ("exe", "name", "entry", "approved"),
    [
        (r"C:\Program Files\Courier\WaybillClient.exe", "WaybillClient.exe", "waybillclient.exe", True),
        (r"C:\Program Files\Courier\WaybillClient.exe", "WaybillClient.exe", "WaybillClient", True),
        (r"C:\Program Files\Courier\WaybillClient.exe", "x", r"c:\program files\courier\waybillclient.exe", True),
        (r"C:\Program Files\Courier\WaybillClient.exe", "x", "C:/Program Files/Courier/WaybillClient.exe", True),
        (r"C:\Users\clerk\Downloads\WaybillClient.exe", "x", r"C:\Program Files\Courier\WaybillClient.exe", False),
        ("/opt/courier/waybill-client", "waybill-client", "/opt/courier/waybill-client", True),
        ("/opt/courier/waybill-client", "waybill-client", "/OPT/Courier/Waybill-Client", True),
        ("/home/clerk/waybill-client", "waybill-client", "/opt/courier/waybill-client", False),
        ("/usr/bin/python3.11", "python3", "waybill-client", False),
        (r"C:\Tools\MyWaybillClient.exe", "x", "WaybillClient.exe", False),
        (None, "WaybillClient.exe", "waybillclient.exe", True),  # exe refused: fall back to the name
        (None, "WaybillClient.exe", r"C:\Program Files\Courier\WaybillClient.exe", False),
        ("/opt/courier/waybill-client", "x", "   ", False),
    ],
)
def test_approved_program_matching(exe: str | None, name: str, entry: str, approved: bool) -> None:
    assert is_approved(_proc(exe, name), [entry]) is approved


def test_unknown_process_is_never_approved() -> None:
    conn = NetworkConnection(
        process=None, local_ip="10.0.0.5", local_port=50000, remote_ip="192.0.2.10", remote_port=443,
        direction="outbound", status="ESTABLISHED", observed_at=0.0, remote_group="protected",
    )
    assert unapproved_clients([conn], ["anything.exe"]) == [conn]


def _sock(local_port: int, remote_ip: str | None, remote_port: int | None, status: str = "ESTABLISHED") -> Socket:
    return Socket(pid=None, local_ip="10.0.0.5", local_port=local_port, remote_ip=remote_ip,
                  remote_port=remote_port, status=status, protocol="tcp", inode=local_port)


def test_owners_are_asked_only_for_sockets_to_listed_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    monkeypatch.setattr("agent.sensors.network.read_info",
                        lambda pid: reads.append(pid) or ProcessInfo(pid=pid, name="python.exe"))
    # Live pids: a pair is remembered only while its process runs.
    me, parent = os.getpid(), os.getppid()
    table = FakeSocketTable(
        [_sock(50001, "192.0.2.10", 443), _sock(50002, "198.51.100.7", 443), _sock(50003, "192.0.2.10", 443),
         _sock(443, None, None, "LISTEN"), _sock(50004, "192.0.2.10", 443, "TIME_WAIT")],
        owners={(50001, 443): me, (50002, 443): parent, (50003, 443): me},
    )
    sensor = NetworkSensor(lambda _c: None, protected_hosts=["192.0.2.10"], lister=table)
    fresh = sensor.poll()
    assert [(c.process.pid if c.process else None, c.local_port) for c in fresh] == [(me, 50001)]  # one pair
    assert table.owner_lookups == 2  # the two live sockets to the listed host, nothing else
    assert reads == [me]
    assert sensor.poll() == []
    assert reads == [me]  # a pair already reported costs no process read
    sensor.set_hosts(["198.51.100.7"])
    assert [c.process.pid for c in sensor.poll() if c.process] == [parent]


def test_a_listed_name_that_moves_to_another_address_is_followed() -> None:
    clock = FakeClock()
    answers = {"waybill.example.com": ["192.0.2.10"]}
    resolver = HostResolver(lookup=lambda name: answers[name], ttl_s=60, clock=clock)
    table = FakeSocketTable([_sock(50001, "192.0.2.10", 443), _sock(50002, "192.0.2.20", 443)],
                            owners={(50001, 443): 41, (50002, 443): 42})
    sensor = NetworkSensor(lambda _c: None, protected_hosts=["waybill.example.com"], resolver=resolver, lister=table)
    assert [c.remote_ip for c in sensor.current()] == ["192.0.2.10"]
    answers["waybill.example.com"] = ["192.0.2.20"]
    clock.now += 61
    assert [(c.remote_ip, c.remote_hostname) for c in sensor.current()] == [("192.0.2.20", "waybill.example.com")]
