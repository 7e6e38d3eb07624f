"""Who is on the other end of a loopback TCP connection, as the OS knows it.

A loopback port is reachable by every user of the PC; the proof endpoint must answer only the
staff at the console (and root/SYSTEM), like the local channel. On Linux the kernel lists every
TCP socket with its owner's uid in /proc/net/tcp{,6} (readable by all); on Windows the owning
process comes from the TCP table (psutil) and its user is compared with the console user.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

PeerCheck = Callable[[int, int], bool]  # (our port, the client's port) -> may it have a proof?


def _port(field: str) -> int:
    return int(field.rsplit(":", 1)[1], 16)


def socket_owner_uid(server_port: int, client_port: int, *, proc_net: Path = Path("/proc/net")) -> int | None:
    """The uid owning the client end (local port ``client_port``, remote port ``server_port``)."""
    for name in ("tcp", "tcp6"):
        try:
            lines = (proc_net / name).read_text("ascii", errors="replace").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 8:
                continue
            try:
                if _port(fields[1]) == client_port and _port(fields[2]) == server_port:
                    return int(fields[7])
            except ValueError:
                continue
    return None


def linux_peer_check(allows_uid: Callable[[int], bool]) -> PeerCheck:
    def check(server_port: int, client_port: int) -> bool:
        uid = socket_owner_uid(server_port, client_port)
        return uid is not None and allows_uid(uid)

    return check


def windows_peer_check(console_users: Callable[[], set[str]]) -> PeerCheck:
    """Written for Windows; tested on Linux with psutil's answers faked."""
    import psutil

    def check(server_port: int, client_port: int) -> bool:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.raddr and conn.laddr.port == client_port and conn.raddr.port == server_port:
                if conn.pid is None:
                    return False
                try:
                    user = psutil.Process(conn.pid).username()
                except psutil.Error:
                    return False
                short = user.rsplit("\\", 1)[-1].lower()
                return short == "system" or short in {u.rsplit("\\", 1)[-1].lower() for u in console_users()}
        return False

    return check


def default_peer_check(console_users: Callable[[], set[str]]) -> PeerCheck:
    if sys.platform == "win32":
        return windows_peer_check(console_users)
    from agent.localchannel.unix import UidPolicy

    policy = UidPolicy(None)
    log.debug("loopback peers are checked by uid (root, uid %d, console users)", os.geteuid())
    return linux_peer_check(policy.allows)
