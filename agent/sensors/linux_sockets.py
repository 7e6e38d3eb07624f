"""The Linux ``SocketTable``: sockets from sock_diag, owners only for the sockets asked about.

Per table (tcp, tcp6, udp, udp6) the first choice is a sock_diag dump; a table the kernel will
not dump (udp_diag not loaded, a seccomp profile refusing netlink) is read from /proc/net as
text from then on, and filtered the same way. If even /proc/net/tcp cannot be read, psutil's
lister takes over for good, at psutil's cost. Every switch is logged once.

Left out on purpose, by every source: TIME_WAIT sockets (no owner any more) and unconnected UDP
sockets (no peer): neither sensor can use them.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import psutil

from agent.sensors import sock_diag
from agent.sensors.connections import Socket, SocketList, SocketLister
from agent.sensors.proc_net import AddressCache, parse_table
from agent.sensors.socket_owners import SocketOwners

log = logging.getLogger(__name__)

PROC_NET = Path("/proc/net")
# (file under /proc/net, protocol, family); the *6 files are missing when IPv6 is disabled.
TABLES = (("tcp", "tcp", socket.AF_INET), ("tcp6", "tcp", socket.AF_INET6),
          ("udp", "udp", socket.AF_INET), ("udp6", "udp", socket.AF_INET6))


def is_useful(sock: Socket) -> bool:
    """What sock_diag's state filter keeps, applied to the text tables too."""
    if sock.protocol == "tcp":
        return sock.status != psutil.CONN_TIME_WAIT
    return sock.remote_ip is not None


class LinuxSocketTable:
    def __init__(self, *, proc_net: Path = PROC_NET, owners: SocketOwners | None = None,
                 netlink: bool = True) -> None:
        self._proc_net = proc_net
        self._owners = owners or SocketOwners()
        self._addresses = AddressCache()
        # Tables read as text: all of them when netlink is off, else those sock_diag refused.
        self._as_text: set[str] = set() if netlink else {name for name, _, _ in TABLES}
        self._psutil: SocketLister | None = None

    @property
    def sources(self) -> dict[str, str]:
        """Where each table comes from now: "sock_diag", "text" or "psutil"."""
        if self._psutil is not None:
            return {name: "psutil" for name, _, _ in TABLES}
        return {name: "text" if name in self._as_text else "sock_diag" for name, _, _ in TABLES}

    def list(self) -> SocketList:
        if self._psutil is not None:
            return self._psutil.list()
        try:
            sockets = [sock for name, protocol, family in TABLES for sock in self._table(name, protocol, family)]
        except OSError as exc:
            log.warning("%s unreadable (%s); using psutil's connection table from now on",
                        self._proc_net / "tcp", exc)
            self._psutil = SocketLister("inet")
            return self._psutil.list()
        self._owners.retain(s.inode for s in sockets if s.inode)
        return sockets

    def with_owners(self, sockets: Iterable[Socket]) -> SocketList:
        wanted = list(sockets)
        if self._psutil is not None:
            return wanted
        pids = self._owners.lookup({s.inode for s in wanted if s.pid is None and s.inode})
        return [_owned(s, pids) for s in wanted]

    def _table(self, name: str, protocol: str, family: int) -> SocketList:
        if name not in self._as_text:
            states = sock_diag.TCP_STATES if protocol == "tcp" else sock_diag.UDP_STATES
            try:
                return sock_diag.dump(family, protocol, states)
            except OSError as exc:
                log.info("sock_diag cannot dump %s (%s); reading /proc/net/%s from now on", name, exc, name)
                self._as_text.add(name)
        try:
            text = (self._proc_net / name).read_bytes()
        except FileNotFoundError:
            if name == "tcp":
                raise
            return []  # no IPv6, or no UDP table, on this kernel
        return [s for s in parse_table(text, protocol, family, self._addresses) if is_useful(s)]


def _owned(sock: Socket, pids: dict[int, int | None]) -> Socket:
    pid = pids.get(sock.inode) if sock.pid is None and sock.inode else None
    return replace(sock, pid=pid) if pid is not None else sock
