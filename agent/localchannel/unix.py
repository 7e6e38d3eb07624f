"""Linux/POSIX local channel: a Unix domain socket whose peers are identified with SO_PEERCRED.

The socket is world-connectable (0666) on purpose: file modes cannot say "root and whoever sits
at the console", so every connection is checked against the kernel's credentials instead.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import stat
import struct
import time
from collections.abc import Callable
from pathlib import Path

from agent.localchannel.transport import Peer, TransportUnavailable, UntrustedServer

log = logging.getLogger(__name__)

LOGIND_SESSIONS_DIR = Path("/run/systemd/sessions")
SOCKET_MODE = 0o666
DIR_MODE = 0o755
BACKLOG = 64
# sockaddr_un.sun_path is 108 bytes including the terminating NUL.
MAX_SOCKET_PATH_BYTES = 107
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def console_uids(sessions_dir: Path = LOGIND_SESSIONS_DIR) -> set[int]:
    """Uids with an active local session on a seat, as systemd-logind records them.

    Read on every connection rather than cached: the console user changes with fast user
    switching, and a cached answer would let the previous user keep talking to the agent.
    """
    uids: set[int] = set()
    try:
        entries = list(sessions_dir.iterdir())
    except OSError:
        return uids
    for entry in entries:
        fields = _read_key_values(entry)
        if fields.get("ACTIVE") == "1" and fields.get("REMOTE", "0") == "0" and fields.get("SEAT"):
            uid = fields.get("UID", "")
            if uid.isdigit():
                uids.add(int(uid))
    return uids


def _read_key_values(path: Path) -> dict[str, str]:
    try:
        text = path.read_text("utf-8", errors="replace")
    except OSError:
        return {}
    pairs = (line.partition("=") for line in text.splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, _, value in pairs}


class UidPolicy:
    """Root, the agent's own user, and either the given uids or the current console user(s)."""

    def __init__(self, allowed_uids: set[int] | None,
                 console: Callable[[], set[int]] | None = None) -> None:
        self._allowed = frozenset(allowed_uids) if allowed_uids is not None else None
        self._console = console

    def allows(self, uid: int) -> bool:
        if uid in (0, os.geteuid()):
            return True
        if self._allowed is not None:
            return uid in self._allowed
        return uid in (self._console or console_uids)()


class UnixStream:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def recv(self, max_bytes: int, timeout: float) -> bytes:
        self._sock.settimeout(timeout)
        try:
            return self._sock.recv(max_bytes)
        except (ConnectionResetError, BrokenPipeError):
            return b""

    def send_all(self, data: bytes, timeout: float) -> None:
        self._sock.settimeout(timeout)
        self._sock.sendall(data)

    def peer(self) -> Peer:
        raw = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
        pid, uid, _gid = _PEERCRED.unpack(raw)
        return Peer(pid=pid, uid=uid)

    def close(self) -> None:
        # shutdown wakes a thread blocked in recv on this socket; close alone may not.
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()


class UnixSocketListener:
    def __init__(self, path: Path, policy: UidPolicy) -> None:
        self.path = path
        self._policy = policy
        _prepare_socket_path(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.bind(str(path))
            os.chmod(path, SOCKET_MODE)
            self._sock.listen(BACKLOG)
        except OSError:
            self._sock.close()
            raise
        self._inode = os.lstat(path).st_ino

    def accept(self, timeout: float) -> UnixStream | None:
        self._sock.settimeout(timeout)
        try:
            conn, _ = self._sock.accept()
        except TimeoutError:
            return None
        return UnixStream(conn)

    def authorize(self, peer: Peer) -> bool:
        return peer.uid is not None and self._policy.allows(peer.uid)

    def close(self) -> None:
        self._sock.close()
        # Remove the socket only if it is still ours: a newer agent may already have replaced it.
        try:
            if os.lstat(self.path).st_ino == self._inode:
                self.path.unlink()
        except OSError:
            pass


def _prepare_socket_path(path: Path) -> None:
    if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        raise ValueError(f"local channel socket path {path} is longer than {MAX_SOCKET_PATH_BYTES} bytes")
    parent = path.parent
    if not parent.exists():
        parent.mkdir(parents=True, mode=DIR_MODE)
        os.chmod(parent, DIR_MODE)  # mkdir's mode is filtered by the umask
    mode = parent.stat().st_mode
    if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
        log.warning("local channel directory %s is world-writable: another user could replace the socket", parent)
    if not mode & stat.S_IXOTH:
        log.warning("local channel directory %s is not searchable by other users: the tray cannot connect", parent)
    if not os.path.lexists(path):
        return
    if not stat.S_ISSOCK(os.lstat(path).st_mode):
        raise FileExistsError(f"{path} exists and is not a socket; refusing to replace it")
    if _socket_is_live(path):
        raise OSError(errno.EADDRINUSE, f"another process is already listening on {path}")
    path.unlink()  # left behind by an agent that did not stop cleanly


def _socket_is_live(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


class UnixSocketTransport:
    def listen(self, address: str, allowed_uids: set[int] | None) -> UnixSocketListener:
        return UnixSocketListener(Path(address), UidPolicy(allowed_uids))

    def connect(self, address: str, timeout: float) -> UnixStream:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            _connect_within(sock, address, timeout)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            raise TransportUnavailable(f"nothing is listening at {address} ({exc.strerror})") from None
        except PermissionError:
            sock.close()
            raise TransportUnavailable(f"no permission to reach {address}") from None
        except TimeoutError:
            sock.close()
            raise TransportUnavailable(f"connecting to {address} timed out after {timeout:g} s") from None
        stream = UnixStream(sock)
        _check_server(stream, address)
        return stream


def _connect_within(sock: socket.socket, address: str, timeout: float) -> None:
    """connect(), retrying while the listen backlog is full (a timed AF_UNIX connect then fails
    with EAGAIN at once instead of waiting)."""
    deadline = time.monotonic() + timeout
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            sock.connect(address)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{address} kept its backlog full for {timeout:g} s") from None
            time.sleep(0.01)


def _check_server(stream: UnixStream, address: str) -> None:
    """Refuse a socket served by anyone but root or ourselves: it would be a fake agent."""
    server = stream.peer()
    if server.uid not in (0, os.geteuid()):
        stream.close()
        raise UntrustedServer(f"{address} is served by {server.describe()}, not by root; refusing to talk to it")
