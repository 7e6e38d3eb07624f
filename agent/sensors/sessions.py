"""Session sensor: who is on this PC, locally or from elsewhere.

Three sources, each failing on its own without blinding the others (STYLE.md #7):
``psutil.users()`` (a user with a non-local host is remote: ssh on Linux, RDP on Windows),
established inbound connections to the VNC and RDP ports (a VNC server shares the desktop
without any login showing in the user table), and the platform's own session list (WTS RDP
sessions on Windows). ``current()`` is what heartbeats report; ``poll()`` emits only new ones.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import psutil

from agent.sensors.connections import SocketTable, default_socket_table, listening_ports
from agent.sensors.hosts import normalize_ip
from agent.sensors.observations import RemoteSession
from agent.sensors.procinfo import read_info
from agent.sensors.worker import PollingWorker

log = logging.getLogger(__name__)

REMOTE_PORTS: Mapping[int, str] = {3389: "rdp", **{port: "vnc" for port in range(5900, 5907)}}
SessionKey = tuple[Any, ...]
PlatformSessions = Callable[[float], Iterable[RemoteSession]]


def is_local_host(host: str) -> bool:
    """utmp's host for a local login: empty, an X display (":0"), screen or tmux, or loopback."""
    text = host.strip()
    if not text or text.startswith(":") or text.startswith("tmux(") or text.lower() == "localhost":
        return True
    ip = normalize_ip(text)
    return ip is not None and ipaddress.ip_address(ip).is_loopback


def session_from_user(user: Any, *, platform_name: str, now: float) -> RemoteSession:
    """A RemoteSession from one psutil ``suser`` (name, terminal, host, started, pid)."""
    host = (getattr(user, "host", None) or "").strip()
    name = getattr(user, "name", None) or None
    if is_local_host(host):
        return RemoteSession(user=name, kind="tty", source_ip=None, observed_at=now)
    # On Windows psutil fills host only for RDP clients; on Linux it is an sshd login.
    kind = "rdp" if platform_name == "win32" else "ssh"
    ip = normalize_ip(host)
    return RemoteSession(user=name, kind=kind, source_ip=ip, observed_at=now, host=None if ip else host)


def _user_key(user: Any) -> SessionKey:
    return ("user", getattr(user, "name", None), getattr(user, "terminal", None),
            getattr(user, "host", None), getattr(user, "started", None))


def default_platform_sessions(platform_name: str | None = None) -> PlatformSessions | None:
    """WTS RDP sessions on Windows, nothing elsewhere (psutil.users() covers ssh)."""
    if (platform_name or sys.platform) != "win32":
        return None
    from agent.sensors.win_sessions import rdp_sessions

    return lambda now: rdp_sessions(now)


class SessionSensor:
    def __init__(
        self,
        out: Callable[[RemoteSession], None],
        *,
        interval_s: float = 2.0,
        users: Callable[[], Iterable[Any]] = psutil.users,
        lister: SocketTable | None = None,
        platform_sessions: PlatformSessions | None = None,
        platform_name: str | None = None,
        remote_ports: Mapping[int, str] = REMOTE_PORTS,
    ) -> None:
        self._out = out
        self._users = users
        self._lister = lister or default_socket_table()
        self._platform = platform_name or sys.platform
        # None means "this platform's own source" (WTS on Windows); pass ``lambda now: []`` to disable.
        self._platform_sessions = (
            platform_sessions if platform_sessions is not None else default_platform_sessions(self._platform)
        )
        self._ports = dict(remote_ports)
        self._seen: set[SessionKey] = set()
        self._failing: set[str] = set()
        self._lock = threading.Lock()
        self._worker = PollingWorker("tg-sensor-sessions", interval_s, self.poll)

    @property
    def name(self) -> str:
        return self._worker.name

    def current(self, now: float | None = None) -> list[RemoteSession]:
        """Sessions present now: local logins (kind "tty") and remote ones."""
        observed = time.time() if now is None else now
        return [session for _, session in self._collect(observed)]

    def poll(self, now: float | None = None) -> list[RemoteSession]:
        """One tick: emit sessions that were not present at the previous tick."""
        observed = time.time() if now is None else now
        with self._lock:
            present = self._collect(observed)
            fresh = [session for key, session in present if key not in self._seen]
            # Only what is present is remembered: a session that ends and comes back is new.
            self._seen = {key for key, _ in present}
        for session in fresh:
            try:
                self._out(session)
            except Exception:
                log.exception("session sensor consumer failed")
        return fresh

    def start(self) -> None:
        self._worker.start()

    def stop(self, timeout: float = 2.0) -> bool:
        return self._worker.stop(timeout)

    def is_alive(self) -> bool:
        return self._worker.is_alive()

    def _collect(self, now: float) -> list[tuple[SessionKey, RemoteSession]]:
        platform = self._guarded("platform sessions", lambda: self._from_platform(now))
        users = self._guarded("users", lambda: self._from_users(now))
        inbound = self._guarded("inbound connections", lambda: self._from_connections(now))
        # Windows lists an RDP login both in psutil.users() and in WTS; WTS knows more (client name).
        known = {(s.kind, (s.user or "").lower(), s.source_ip) for _, s in platform}
        users = [(k, s) for k, s in users if (s.kind, (s.user or "").lower(), s.source_ip) not in known]
        return platform + users + inbound

    def _guarded(
        self, source: str, collect: Callable[[], list[tuple[SessionKey, RemoteSession]]]
    ) -> list[tuple[SessionKey, RemoteSession]]:
        try:
            found = collect()
        except Exception:
            if source not in self._failing:  # log once per outage, not every tick
                log.exception("session source %r failed; the other sources still report", source)
                self._failing.add(source)
            return []
        self._failing.discard(source)
        return found

    def _from_users(self, now: float) -> list[tuple[SessionKey, RemoteSession]]:
        return [
            (_user_key(user), session_from_user(user, platform_name=self._platform, now=now))
            for user in self._users()
        ]

    def _from_platform(self, now: float) -> list[tuple[SessionKey, RemoteSession]]:
        if self._platform_sessions is None:
            return []
        return [
            (("platform", s.kind, s.user, s.source_ip, s.host), s) for s in self._platform_sessions(now)
        ]

    def _from_connections(self, now: float) -> list[tuple[SessionKey, RemoteSession]]:
        sockets = self._lister.list()
        listening = listening_ports(sockets)
        inbound = [
            sock for sock in sockets
            if sock.local_port in self._ports
            and sock.status == psutil.CONN_ESTABLISHED
            and sock.local_port in listening  # not our own outbound client to a remote VNC
            and sock.remote_ip is not None
        ]
        found = []
        users: dict[int, str | None] = {}
        for sock in self._lister.with_owners(inbound):  # owners only of these few (connections.py)
            kind = self._ports[sock.local_port]
            if sock.pid is not None and sock.pid not in users:
                info = read_info(sock.pid)
                users[sock.pid] = info.user if info else None
            user = users.get(sock.pid) if sock.pid is not None else None
            key = ("inbound", kind, sock.local_port, sock.remote_ip, sock.remote_port)
            found.append((key, RemoteSession(user=user, kind=kind, source_ip=sock.remote_ip, observed_at=now)))
        return found
