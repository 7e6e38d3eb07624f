"""The machine's inet sockets with their owning pid, shared by the network and session sensors.

``psutil.net_connections`` is one system call on Windows and a read of /proc/net on Linux. Where
the OS refuses it as a whole (macOS, or a hardened Linux without the right capability) the
fallback asks each process for its own sockets, skipping those that vanish or refuse.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import Any

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


def _per_process(kind: str) -> list[Socket]:
    sockets: list[Socket] = []
    for proc in psutil.process_iter():
        try:
            conns = proc.net_connections(kind=kind)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        sockets.extend(s for c in conns if (s := _socket_from(c, proc.pid)) is not None)
    return sockets


class SocketLister:
    """Lists sockets; after the first refusal it goes straight to the per-process fallback."""

    def __init__(self, kind: str = "inet") -> None:
        self._kind = kind
        self.fallback = False

    def list(self) -> list[Socket]:
        if not self.fallback:
            try:
                conns = psutil.net_connections(kind=self._kind)
            except psutil.AccessDenied:
                log.warning("system-wide connection table refused; reading each process's sockets")
                self.fallback = True
            else:
                return [s for c in conns if (s := _socket_from(c, c.pid)) is not None]
        return _per_process(self._kind)


def listening_ports(sockets: list[Socket]) -> set[int]:
    return {s.local_port for s in sockets if s.protocol == "tcp" and s.status == psutil.CONN_LISTEN}
