"""The OS seam of the local channel: a listener that knows who connected, and a byte stream.

Three implementations: ``unix`` (Unix domain socket + SO_PEERCRED), ``windows`` (named pipe +
client impersonation, pywin32 imported lazily) and ``fake`` (in-process, for tests). The server
and the client only speak to these protocols; the address string picks the implementation.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Protocol

PIPE_PREFIX = "\\\\.\\pipe\\"
FAKE_PREFIX = "fake:"


@dataclass(frozen=True)
class Peer:
    """Who is on the other end of a connection, as the OS vouches for it (never as the peer says)."""

    pid: int | None = None
    uid: int | None = None  # POSIX
    sid: str | None = None  # Windows, string form "S-1-5-21-..."
    session: int | None = None  # Windows logon session of the peer process (0 = services)

    def describe(self) -> str:
        who = f"uid {self.uid}" if self.uid is not None else f"sid {self.sid}"
        return f"{who} (pid {self.pid})" if self.pid is not None else who


class Stream(Protocol):
    def recv(self, max_bytes: int, timeout: float) -> bytes:
        """Up to max_bytes; b"" at end of stream; raises TimeoutError when nothing came in time."""
        ...

    def send_all(self, data: bytes, timeout: float) -> None: ...

    def peer(self) -> Peer | None:
        """The OS-verified identity of the other end; None until the OS can tell (Windows: the
        client must have written something first)."""
        ...

    def close(self) -> None: ...


class Listener(Protocol):
    def accept(self, timeout: float) -> Stream | None:
        """The next connection, or None when none arrived within timeout."""
        ...

    def authorize(self, peer: Peer) -> bool:
        """Whether this peer may use the channel (root/SYSTEM or the allowed console user)."""
        ...

    def close(self) -> None: ...


class Transport(Protocol):
    def listen(self, address: str, allowed_uids: set[int] | None) -> Listener: ...

    def connect(self, address: str, timeout: float) -> Stream: ...


class TransportUnavailable(OSError):
    """Nothing is listening at the address (agent not running, socket missing, access denied)."""


class UntrustedServer(OSError):
    """Something answers at the address but the OS says it is not the agent."""


def transport_for(address: str) -> Transport:
    """The implementation an address belongs to: pipe names, ``fake:`` names, else socket paths."""
    if address.startswith(FAKE_PREFIX):
        from agent.localchannel.fake import FAKE_TRANSPORT

        return FAKE_TRANSPORT
    if address.startswith(PIPE_PREFIX):
        from agent.localchannel.windows import WindowsPipeTransport

        return WindowsPipeTransport()
    if sys.platform == "win32":
        raise ValueError(f"local channel address {address!r}: expected a pipe name starting with {PIPE_PREFIX}")
    from agent.localchannel.unix import UnixSocketTransport

    return UnixSocketTransport()
