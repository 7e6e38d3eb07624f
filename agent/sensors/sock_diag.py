"""Linux's inet socket tables through netlink sock_diag (what `ss` uses), in one dump per table.

Reading /proc/net/tcp makes the kernel print every socket as text and, on machines with a large
established-hash table, walk that table again for each page read: several milliseconds of
kernel time per file even when it is nearly empty. sock_diag returns binary records and takes
a state filter, so sockets no sensor can use are never sent: TIME_WAIT (no owner any more) and
unconnected UDP (no peer). It needs no privilege for the caller's own network namespace.

Records are decoded to ``Socket`` with psutil's conventions (port 0 = no address, UDP status
"NONE", IPv4-mapped IPv6 as plain IPv4) so a sensor cannot tell which source it was given.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator

import psutil

from agent.sensors.connections import Socket
from agent.sensors.hosts import normalize_ip

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
_NLMSG = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_REQUEST = struct.Struct("=BBBBI")  # family, protocol, ext, pad, states; then a zeroed 48-byte sockid
_MSG_LEN = 72  # struct inet_diag_msg
_INODE = struct.Struct("=I")  # idiag_inode, host byte order, at offset 68
RECV_BYTES = 64 * 1024

# TCP states (include/net/tcp_states.h) in the names psutil uses; index = state number.
TCP_STATE_NAMES = (
    psutil.CONN_NONE, psutil.CONN_ESTABLISHED, psutil.CONN_SYN_SENT, psutil.CONN_SYN_RECV,
    psutil.CONN_FIN_WAIT1, psutil.CONN_FIN_WAIT2, psutil.CONN_TIME_WAIT, psutil.CONN_CLOSE,
    psutil.CONN_CLOSE_WAIT, psutil.CONN_LAST_ACK, psutil.CONN_LISTEN, psutil.CONN_CLOSING,
)
TCP_ESTABLISHED, TCP_TIME_WAIT, TCP_CLOSE = 1, 6, 7
ALL_STATES = 0xFFF
# Wanted per protocol: every TCP state but TIME_WAIT; UDP only when connected to a peer.
TCP_STATES = ALL_STATES & ~(1 << TCP_TIME_WAIT)
UDP_STATES = 1 << TCP_ESTABLISHED


MAX_CACHED_ADDRESSES = 4096
_ips: dict[bytes, str] = {}  # the same few peers fill the table; their text is made once


def _ip(raw: bytes, family: int) -> str:
    key = raw[:4] if family == socket.AF_INET else raw
    text = _ips.get(key)
    if text is None:
        if len(_ips) >= MAX_CACHED_ADDRESSES:
            _ips.clear()
        plain = socket.inet_ntop(family, key)
        text = _ips[key] = normalize_ip(plain) or plain
    return text


def decode_record(record: bytes, protocol: str) -> Socket | None:
    """One inet_diag_msg; None when it has no local port (psutil leaves those out too)."""
    family, state = record[0], record[1]
    sport, dport = struct.unpack_from(">HH", record, 4)
    if not sport:
        return None
    (inode,) = _INODE.unpack_from(record, 68)
    if protocol == "tcp":
        status = TCP_STATE_NAMES[state] if state < len(TCP_STATE_NAMES) else psutil.CONN_NONE
    else:
        status = psutil.CONN_NONE
    return Socket(pid=None, local_ip=_ip(record[8:24], family), local_port=sport,
                  remote_ip=_ip(record[24:40], family) if dport else None, remote_port=dport or None,
                  status=status, protocol=protocol, inode=inode)


def _messages(data: bytes) -> Iterator[tuple[int, bytes]]:
    offset = 0
    while offset + _NLMSG.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSG.unpack_from(data, offset)
        if length < _NLMSG.size:
            raise OSError(errno.EPROTO, "sock_diag: malformed netlink message")
        yield kind, data[offset + _NLMSG.size:offset + length]
        offset += (length + 3) & ~3


def _check_status(payload: bytes) -> None:
    code = struct.unpack_from("=i", payload)[0] if len(payload) >= 4 else 0
    if code < 0:
        raise OSError(-code, f"sock_diag: {os.strerror(-code)}")


def dump(family: int, protocol: str, states: int) -> list[Socket]:
    """Every socket of one table in the given states; OSError when the kernel cannot dump it."""
    number = socket.IPPROTO_TCP if protocol == "tcp" else socket.IPPROTO_UDP
    request = _REQUEST.pack(family, number, 0, 0, states) + bytes(48)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
        nl.send(_NLMSG.pack(_NLMSG.size + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
                + request)
        found: list[Socket] = []
        while True:
            for kind, payload in _messages(nl.recv(RECV_BYTES)):
                if kind == NLMSG_DONE:
                    _check_status(payload)  # a missing udp_diag module answers DONE with -ENOENT
                    return found
                if kind == NLMSG_ERROR:
                    _check_status(payload)
                    continue
                if kind == SOCK_DIAG_BY_FAMILY and len(payload) >= _MSG_LEN:
                    sock = decode_record(payload, protocol)
                    if sock is not None:
                        found.append(sock)
