"""Linux's inet socket tables as text from /proc/net: the fallback where sock_diag is refused.

Each line of /proc/net/tcp (tcp6, udp, udp6) gives a socket's local and remote address in hex,
its state and its inode. Addresses are decoded as psutil does (the same text, the same rules:
port 0 means "no address"), with a small cache because the same few IPs repeat on every line.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator

import psutil

from agent.sensors.connections import Socket
from agent.sensors.hosts import normalize_ip

# include/net/tcp_states.h, in the names psutil uses.
TCP_STATES = {
    b"01": psutil.CONN_ESTABLISHED, b"02": psutil.CONN_SYN_SENT, b"03": psutil.CONN_SYN_RECV,
    b"04": psutil.CONN_FIN_WAIT1, b"05": psutil.CONN_FIN_WAIT2, b"06": psutil.CONN_TIME_WAIT,
    b"07": psutil.CONN_CLOSE, b"08": psutil.CONN_CLOSE_WAIT, b"09": psutil.CONN_LAST_ACK,
    b"0A": psutil.CONN_LISTEN, b"0B": psutil.CONN_CLOSING,
}
MAX_CACHED_ADDRESSES = 4096


def decode_ip(text: bytes, family: int) -> str:
    """The kernel prints each 32-bit word of the address in host byte order, as hex."""
    words = [int(text[i:i + 8], 16).to_bytes(4, sys.byteorder) for i in range(0, len(text), 8)]
    raw = socket.inet_ntop(family, b"".join(words))
    return normalize_ip(raw) or raw  # dual-stack sockets show IPv4 peers as ::ffff:a.b.c.d


class AddressCache:
    """hex IP -> text, bounded; the same handful of addresses fill every line of the table."""

    def __init__(self, max_entries: int = MAX_CACHED_ADDRESSES) -> None:
        self._max = max_entries
        self._ips: dict[bytes, str] = {}

    def decode(self, field: bytes, family: int) -> tuple[str, int] | None:
        """("10.0.0.5", 22) from b"0500000A:0016"; None for port 0 (no address), as psutil."""
        ip_hex, _, port_hex = field.partition(b":")
        port = int(port_hex, 16)
        if not port:
            return None
        ip = self._ips.get(ip_hex)
        if ip is None:
            if len(self._ips) >= self._max:
                self._ips.clear()
            ip = self._ips[ip_hex] = decode_ip(ip_hex, family)
        return ip, port


def parse_table(text: bytes, protocol: str, family: int, addresses: AddressCache) -> Iterator[Socket]:
    """Sockets of one /proc/net file; malformed lines are skipped."""
    for line in text.splitlines()[1:]:
        fields = line.split(None, 10)
        if len(fields) < 10:
            continue
        try:
            local = addresses.decode(fields[1], family)
            remote = addresses.decode(fields[2], family)
            inode = int(fields[9])
        except ValueError:
            continue
        if local is None:
            continue
        status = TCP_STATES.get(fields[3], psutil.CONN_NONE) if protocol == "tcp" else psutil.CONN_NONE
        yield Socket(pid=None, local_ip=local[0], local_port=local[1],
                     remote_ip=remote[0] if remote else None, remote_port=remote[1] if remote else None,
                     status=status, protocol=protocol, inode=inode)
