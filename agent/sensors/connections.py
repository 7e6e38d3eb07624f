"""The machine's inet sockets, shared by the network and session sensors, behind one small interface.

A ``SocketTable`` lists sockets and, separately, finds the process that owns the few a sensor keeps:

- Linux (``linux_sockets.LinuxSocketTable``): one netlink sock_diag dump per table (/proc/net
  text where that is refused); the owner of a socket is found only for the sockets asked about,
  by their inode (``socket_owners``). ``psutil.net_connections`` instead reads /proc/net/tcp*
  (milliseconds of kernel time each on a large hash table) and maps every socket to its pid on
  every call by reading the link of every file descriptor of every process: far too much to do
  every 2 s for the handful of sockets that matter.
- Windows and others (``SocketLister``): ``psutil.net_connections`` is one system call on
  Windows (GetExtendedTcpTable) and comes with the owning pid. Where the OS refuses it as a
  whole (macOS, or a hardened Linux without the right capability) the fallback asks each process
  for its own sockets, skipping those that vanish or refuse.
- Tests: ``FakeSocketTable``.

``SharedSocketTable`` lets sensors that tick at the same cadence share one listing.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import psutil

from agent.sensors.hosts import normalize_ip

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Socket:
    pid: int | None
    local_ip: str
    local_port: int
    remote_ip: str | None
    remote_port: int | None
    status: str
    protocol: str  # "tcp" | "udp"
    # Linux: the socket's inode, by which its owner is found on demand; None where pid came with it.
    inode: int | None = None


SocketList = list[Socket]  # (a method named ``list`` below would shadow the builtin in annotations)


class SocketTable(Protocol):
    def list(self) -> SocketList:
        """Every inet socket now; ``pid`` may be left unresolved (None) where that is costly."""
        ...

    def with_owners(self, sockets: Iterable[Socket]) -> SocketList:
        """The given sockets with ``pid`` filled in where the owner can be found."""
        ...


def _socket_from(conn: Any, pid: int | None) -> Socket | None:
    if not conn.laddr:
        return None
    local_ip = normalize_ip(conn.laddr.ip) or conn.laddr.ip
    remote_ip = normalize_ip(conn.raddr.ip) if conn.raddr else None
    return Socket(
        pid=pid,
        local_ip=local_ip,
        local_port=int(conn.laddr.port),
        remote_ip=remote_ip,
        remote_port=int(conn.raddr.port) if conn.raddr else None,
        status=str(conn.status),
        protocol="udp" if conn.type == socket.SOCK_DGRAM else "tcp",
    )


def _per_process(kind: str) -> SocketList:
    sockets: list[Socket] = []
    for proc in psutil.process_iter():
        try:
            conns = proc.net_connections(kind=kind)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        sockets.extend(s for c in conns if (s := _socket_from(c, proc.pid)) is not None)
    return sockets


class SocketLister:
    """psutil's table with owners included; after the first refusal, the per-process fallback."""

    def __init__(self, kind: str = "inet") -> None:
        self._kind = kind
        self.fallback = False

    def list(self) -> SocketList:
        if not self.fallback:
            try:
                conns = psutil.net_connections(kind=self._kind)
            except psutil.AccessDenied:
                log.warning("system-wide connection table refused; reading each process's sockets")
                self.fallback = True
            else:
                return [s for c in conns if (s := _socket_from(c, c.pid)) is not None]
        return _per_process(self._kind)

    def with_owners(self, sockets: Iterable[Socket]) -> SocketList:
        return list(sockets)  # psutil gave the owner with each socket already


class FakeSocketTable:
    """Serves a fixed list; ``owners`` maps (local port, remote port) to the owning pid."""

    def __init__(self, sockets: Iterable[Socket] = (), owners: dict[tuple[int, int | None], int] | None = None) -> None:
        self.sockets = list(sockets)
        self.owners = dict(owners or {})
        self.listings = 0
        self.owner_lookups = 0

    def list(self) -> SocketList:
        self.listings += 1
        return list(self.sockets)

    def with_owners(self, sockets: Iterable[Socket]) -> SocketList:
        found = []
        for sock in sockets:
            self.owner_lookups += 1
            pid = self.owners.get((sock.local_port, sock.remote_port))
            found.append(sock if sock.pid is not None or pid is None else replace(sock, pid=pid))
        return found


class SharedSocketTable:
    """One listing serves every sensor that asks within ``max_age_s`` of it (thread-safe)."""

    def __init__(self, source: SocketTable, *, max_age_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._source = source
        self._max_age = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._listed_at: float | None = None
        self._sockets: list[Socket] = []
        self.listings = 0

    def list(self) -> SocketList:
        with self._lock:
            now = self._clock()
            if self._listed_at is None or now - self._listed_at >= self._max_age:
                self._sockets = self._source.list()
                self._listed_at = now
                self.listings += 1
            return list(self._sockets)

    def with_owners(self, sockets: Iterable[Socket]) -> SocketList:
        with self._lock:  # the Linux owner cache is not thread-safe on its own
            return self._source.with_owners(sockets)


def default_socket_table(platform_name: str | None = None) -> SocketTable:
    """sock_diag (or /proc/net) on Linux, psutil elsewhere."""
    if (platform_name or sys.platform).startswith("linux"):
        from agent.sensors.linux_sockets import LinuxSocketTable  # imports this module: late

        return LinuxSocketTable()
    return SocketLister("inet")


def listening_ports(sockets: list[Socket]) -> set[int]:
    return {s.local_port for s in sockets if s.protocol == "tcp" and s.status == psutil.CONN_LISTEN}
