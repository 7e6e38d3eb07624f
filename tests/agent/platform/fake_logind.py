"""A private D-Bus daemon and a minimal systemd-logind on it, for the screen-lock watcher's tests.

The bus is the real dbus-daemon (``--session`` config, so no root and no system policy); only
logind is played, with jeepney, and only as much of it as the watcher reads: Manager.ListSessions,
session properties (Get/GetAll), the Lock/Unlock signals, PropertiesChanged on LockedHint and
Manager.SessionRemoved.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jeepney import DBusAddress, HeaderFields, MessageType, new_error, new_method_return, new_signal
from jeepney.bus_messages import message_bus
from jeepney.io.threading import DBusRouter, Proxy, ReceiveStopped, open_dbus_connection

DBUS_DAEMON = "/usr/bin/dbus-daemon"
LOGIND = "org.freedesktop.login1"
MANAGER_PATH = "/org/freedesktop/login1"
MANAGER = "org.freedesktop.login1.Manager"
SESSION = "org.freedesktop.login1.Session"
PROPERTIES = "org.freedesktop.DBus.Properties"


@contextlib.contextmanager
def private_bus() -> Iterator[str]:
    """A dbus-daemon of our own; yields its address (unix:path=...)."""
    daemon = subprocess.Popen([DBUS_DAEMON, "--session", "--print-address", "--nofork", "--nopidfile"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert daemon.stdout is not None
        address = daemon.stdout.readline().strip()
        assert address.startswith("unix:"), f"dbus-daemon printed {address!r}"
        yield address
    finally:
        daemon.terminate()
        daemon.wait(10)


@dataclass
class FakeSession:
    id: str
    user: str
    seat: str = "seat0"
    remote: bool = False
    locked: bool = False

    @property
    def path(self) -> str:
        return f"/org/freedesktop/login1/session/{self.id}"

    def properties(self) -> dict[str, tuple[str, Any]]:
        seat_path = f"/org/freedesktop/login1/seat/{self.seat}" if self.seat else "/"
        return {
            "Id": ("s", self.id),
            "Name": ("s", self.user),
            "User": ("(uo)", (1000, "/org/freedesktop/login1/user/_1000")),
            "Seat": ("(so)", (self.seat, seat_path)),
            "Remote": ("b", self.remote),
            "Type": ("s", "tty" if self.remote else "x11"),
            "Class": ("s", "user"),
            "Active": ("b", True),
            "LockedHint": ("b", self.locked),
        }


class FakeLogind:
    def __init__(self, address: str, sessions: list[FakeSession]) -> None:
        self.address = address
        self.sessions = {session.id: session for session in sessions}
        self.calls: list[str] = []
        self._conn = open_dbus_connection(address)
        with DBusRouter(self._conn) as router:
            Proxy(message_bus, router, timeout=5).RequestName(LOGIND)
        self._thread = threading.Thread(target=self._serve, name="fake-logind", daemon=True)
        self._thread.start()

    # --- what tests do -----------------------------------------------------------------------

    def add(self, session: FakeSession) -> None:
        self.sessions[session.id] = session

    def set_locked_hint(self, session_id: str, locked: bool, *, invalidate: bool = False) -> None:
        """What the desktop's screen locker makes logind do (SetLockedHint)."""
        session = self.sessions[session_id]
        session.locked = locked
        changed = {} if invalidate else {"LockedHint": ("b", locked)}
        invalidated = ["LockedHint"] if invalidate else []
        self._emit(session.path, PROPERTIES, "PropertiesChanged", "sa{sv}as", (SESSION, changed, invalidated))

    def lock_request(self, session_id: str) -> None:
        """What `loginctl lock-session` makes logind do."""
        self._emit(self.sessions[session_id].path, SESSION, "Lock", None, ())

    def unlock_request(self, session_id: str) -> None:
        self._emit(self.sessions[session_id].path, SESSION, "Unlock", None, ())

    def remove(self, session_id: str) -> None:
        session = self.sessions.pop(session_id)
        self._emit(MANAGER_PATH, MANAGER, "SessionRemoved", "so", (session.id, session.path))

    def close(self) -> None:
        self._conn.interrupt()
        self._thread.join(5)
        self._conn.close()

    # --- the service side ----------------------------------------------------------------------

    def _emit(self, path: str, interface: str, member: str, signature: str | None, body: tuple[Any, ...]) -> None:
        self._conn.send(new_signal(DBusAddress(path, interface=interface), member, signature, body))

    def _serve(self) -> None:
        while True:
            try:
                message = self._conn.receive()
            except (ReceiveStopped, OSError):
                return
            if message.header.message_type == MessageType.method_call:
                self._conn.send(self._answer(message))

    def _answer(self, call: Any) -> Any:
        fields = call.header.fields
        path, interface, member = fields.get(HeaderFields.path), fields.get(HeaderFields.interface), \
            fields.get(HeaderFields.member)
        self.calls.append(f"{interface}.{member} {path}")
        if path == MANAGER_PATH and interface == MANAGER and member == "ListSessions":
            rows = [(s.id, 1000, s.user, s.seat, s.path) for s in self.sessions.values()]
            return new_method_return(call, "a(susso)", (rows,))
        session = next((s for s in self.sessions.values() if s.path == path), None)
        if session is not None and interface == PROPERTIES and member == "GetAll":
            return new_method_return(call, "a{sv}", (session.properties(),))
        if session is not None and interface == PROPERTIES and member == "Get":
            return new_method_return(call, "v", (session.properties()[call.body[1]],))
        return new_error(call, "org.freedesktop.DBus.Error.UnknownObject", "s", (f"no {path} {member}",))


def spoof_signal(address: str, session: FakeSession, member: str = "Lock") -> int:
    """A stranger on the bus sends a session Lock signal straight to every other client; returns how many."""
    conn = open_dbus_connection(address)
    try:
        with DBusRouter(conn) as router:
            bus = Proxy(message_bus, router, timeout=5)
            names = [n for n in bus.ListNames()[0] if n.startswith(":") and n != conn.unique_name]
            for name in names:
                signal = new_signal(DBusAddress(session.path, interface=SESSION), member)
                signal.header.fields[HeaderFields.destination] = name
                router.send(signal)
            bus.GetId()  # a round trip: the signals above have been handed to the bus
        return len(names)
    finally:
        conn.close()


def bus_socket(address: str) -> Path:
    return Path(address.split("path=", 1)[1].split(",", 1)[0])
