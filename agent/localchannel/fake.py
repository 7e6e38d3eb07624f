"""In-process local channel for tests: addresses ``fake:<name>``, peers of the test's choosing.

Bytes still travel through a real socketpair, so framing, timeouts and closing behave as on a
real socket; only the peer identity is declared by the test (``connecting_as``) instead of being
read from the kernel.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import socket
import threading
from collections.abc import Iterator
from contextvars import ContextVar

from agent.localchannel.transport import FAKE_PREFIX, Peer, TransportUnavailable
from agent.localchannel.unix import UidPolicy, UnixStream

_client_identity: ContextVar[Peer | None] = ContextVar("fake_client_identity", default=None)


@contextlib.contextmanager
def connecting_as(peer: Peer) -> Iterator[None]:
    """Connections opened by this thread/context inside the block claim to be ``peer``."""
    token = _client_identity.set(peer)
    try:
        yield
    finally:
        _client_identity.reset(token)


class FakeStream(UnixStream):
    def __init__(self, sock: socket.socket, peer: Peer) -> None:
        super().__init__(sock)
        self._peer = peer

    def peer(self) -> Peer:
        return self._peer


class FakeListener:
    def __init__(self, transport: FakeTransport, name: str, policy: UidPolicy) -> None:
        self._transport = transport
        self._name = name
        self._policy = policy
        self._incoming: queue.Queue[FakeStream] = queue.Queue()

    def deliver(self, stream: FakeStream) -> None:
        self._incoming.put(stream)

    def accept(self, timeout: float) -> FakeStream | None:
        try:
            return self._incoming.get(timeout=timeout)
        except queue.Empty:
            return None

    def authorize(self, peer: Peer) -> bool:
        return peer.uid is not None and self._policy.allows(peer.uid)

    def close(self) -> None:
        self._transport.forget(self._name, self)
        while True:
            try:
                self._incoming.get_nowait().close()
            except queue.Empty:
                return


class FakeTransport:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: dict[str, FakeListener] = {}

    def listen(self, address: str, allowed_uids: set[int] | None) -> FakeListener:
        name = address.removeprefix(FAKE_PREFIX)
        with self._lock:
            if name in self._listeners:
                raise OSError(errno.EADDRINUSE, f"fake local channel {address} is already listening")
            # No console users exist in the fake world: only root, us and allowed_uids get in.
            listener = FakeListener(self, name, UidPolicy(allowed_uids, console=set))
            self._listeners[name] = listener
        return listener

    def forget(self, name: str, listener: FakeListener) -> None:
        with self._lock:
            if self._listeners.get(name) is listener:
                del self._listeners[name]

    def connect(self, address: str, timeout: float) -> FakeStream:
        with self._lock:
            listener = self._listeners.get(address.removeprefix(FAKE_PREFIX))
        if listener is None:
            raise TransportUnavailable(f"nothing is listening at {address}")
        client_sock, server_sock = socket.socketpair()
        client_peer = _client_identity.get() or Peer(pid=os.getpid(), uid=os.geteuid())
        listener.deliver(FakeStream(server_sock, client_peer))
        return FakeStream(client_sock, Peer(pid=os.getpid(), uid=0))


FAKE_TRANSPORT = FakeTransport()
