"""Linux: screen locks from systemd-logind on the system D-Bus, watched by one blocking thread.

The agent runs as root, so it listens on the system bus, where logind publishes every session:
``LockedHint`` (set by the desktop's screen locker, announced by PropertiesChanged) and the
``Lock``/``Unlock`` signals (``loginctl lock-session``, lock before suspend). A lock *request* is
taken as a lock: the agent would rather sign out once too often than leave a session usable.

The thread sleeps in a blocking receive on the bus socket; ``stop`` shuts that socket down to
wake it, so an idle watcher costs no CPU. Without a bus or without logind (containers, minimal
systems) the watcher says so once, in the log and through ``on_state``, and tries again now and
then with a growing pause, in case the bus comes up after the agent.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

from jeepney import DBusAddress, HeaderFields, MatchRule, Properties, new_method_call
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import DBusConnection, open_dbus_connection
from jeepney.wrappers import DBusErrorResponse, unwrap_msg

from agent.backoff import Backoff
from agent.platform.base import ScreenLockChange, ScreenLockListener, WatchStateListener
from agent.workers import Worker

log = logging.getLogger(__name__)

LOGIND = "org.freedesktop.login1"
MANAGER_PATH = "/org/freedesktop/login1"
MANAGER_INTERFACE = "org.freedesktop.login1.Manager"
SESSION_INTERFACE = "org.freedesktop.login1.Session"
SESSION_PATHS = "/org/freedesktop/login1/session"
PROPERTIES_INTERFACE = "org.freedesktop.DBus.Properties"
CALL_TIMEOUT_S = 5.0
AUTH_TIMEOUT_S = 2.0
RETRY_BASE_S = 5.0
RETRY_CAP_S = 300.0


@dataclass(frozen=True)
class SessionInfo:
    session: str
    user: str | None
    console: bool
    locked: bool


def session_info(path: str, properties: dict[str, tuple[str, Any]]) -> SessionInfo:
    """A logind session from its D-Bus properties (jeepney gives variants as (signature, value))."""

    def value(name: str, default: Any) -> Any:
        entry = properties.get(name)
        return entry[1] if isinstance(entry, tuple) and len(entry) == 2 else default

    seat = value("Seat", ("", "/"))
    seat_id = seat[0] if isinstance(seat, tuple) and seat else ""
    # At this PC's own screen: on a seat (seat0) and not opened over the network (SSH, XDMCP).
    console = bool(seat_id) and not value("Remote", False)
    return SessionInfo(session=str(value("Id", path.rsplit("/", 1)[-1])), user=value("Name", "") or None,
                       console=console, locked=bool(value("LockedHint", False)))


def match_rules() -> list[MatchRule]:
    """What the bus should route to us: logind's session lock signals and session removals."""
    hint = MatchRule(type="signal", sender=LOGIND, interface=PROPERTIES_INTERFACE, member="PropertiesChanged",
                     path_namespace=SESSION_PATHS)
    hint.add_arg_condition(0, SESSION_INTERFACE)
    lock = MatchRule(type="signal", sender=LOGIND, interface=SESSION_INTERFACE, path_namespace=SESSION_PATHS)
    removed = MatchRule(type="signal", sender=LOGIND, interface=MANAGER_INTERFACE, member="SessionRemoved",
                        path=MANAGER_PATH)
    return [hint, lock, removed]


class LogindUnavailable(Exception):
    """The bus or logind cannot be used; the message says which and why."""


class LogindLockWatch:
    """Screen locks of all logind sessions, reported on the transitions (locked ⇄ unlocked)."""

    def __init__(self, bus: str = "SYSTEM", *, retry: Backoff | None = None) -> None:
        # "SYSTEM" honours DBUS_SYSTEM_BUS_ADDRESS, as every D-Bus client does; tests pass an address.
        self._bus = bus
        self._retry = retry or Backoff(RETRY_BASE_S, RETRY_CAP_S)
        self._worker: Worker | None = None
        self._conn: DBusConnection | None = None
        self._conn_lock = threading.Lock()
        self._on_change: ScreenLockListener = lambda change: None
        self._on_state: WatchStateListener = lambda problem: None
        self._state: str | None = ""  # "" until first known; then None (watching) or the problem
        self._logind_name: str | None = None
        self._sessions: dict[str, SessionInfo] = {}

    # --- ScreenLockWatch ---------------------------------------------------------------------

    def start(self, on_change: ScreenLockListener, on_state: WatchStateListener) -> None:
        self._on_change, self._on_state = on_change, on_state
        self._worker = Worker("screen-lock", self._run, wake=self._interrupt)
        self._worker.start()

    def stop(self, timeout: float) -> bool:
        return self._worker.stop(timeout) if self._worker is not None else True

    # --- the thread --------------------------------------------------------------------------

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                conn = self._connect()
            except LogindUnavailable as exc:
                self._report(str(exc))
                stop.wait(self._retry.next_delay())
                continue
            with self._conn_lock:
                self._conn = conn
            try:
                self._retry.reset()
                self._report(None)
                self._watch(conn, stop)
            except (OSError, DBusErrorResponse) as exc:
                if not stop.is_set():
                    self._report(f"lost the D-Bus system bus ({exc})")
                    stop.wait(self._retry.next_delay())
            finally:
                with self._conn_lock:
                    self._conn = None
                conn.close()

    def _interrupt(self) -> None:
        """Wake the blocking receive (Worker calls this after setting the stop event)."""
        with self._conn_lock:
            if self._conn is not None:
                with contextlib.suppress(OSError):
                    self._conn.sock.shutdown(socket.SHUT_RDWR)

    def _connect(self) -> DBusConnection:
        try:
            conn = open_dbus_connection(self._bus, auth_timeout=AUTH_TIMEOUT_S)
        except (OSError, RuntimeError, ValueError, KeyError) as exc:
            raise LogindUnavailable(f"no D-Bus system bus ({exc or type(exc).__name__})") from None
        try:
            for rule in match_rules():
                self._call(conn, message_bus.AddMatch(rule))
            self._logind_name = self._logind_owner(conn)
            self._sessions = {}
            listed = self._call(conn, new_method_call(DBusAddress(MANAGER_PATH, LOGIND, MANAGER_INTERFACE),
                                                      "ListSessions"))[0]
            for row in listed:
                path = str(row[4])
                self._sessions[path] = self._fetch(conn, path)
        except DBusErrorResponse as exc:
            conn.close()
            raise LogindUnavailable(f"systemd-logind is not on the system bus ({exc.name})") from None
        except OSError as exc:
            conn.close()
            raise LogindUnavailable(f"the D-Bus system bus went away ({exc})") from None
        return conn

    def _watch(self, conn: DBusConnection, stop: threading.Event) -> None:
        signals: deque[Any] = deque()
        # Replies are read on this connection too; signals that arrive meanwhile wait in the deque.
        with conn.filter(MatchRule(type="signal"), queue=signals):
            while not stop.is_set():
                message = conn.recv_until_filtered(signals)
                try:
                    self._dispatch(conn, message)
                except DBusErrorResponse as exc:
                    log.debug("logind signal not followed up: %s", exc)

    def _dispatch(self, conn: DBusConnection, message: Any) -> None:
        fields = message.header.fields
        path, interface, member = (fields.get(HeaderFields.path, ""), fields.get(HeaderFields.interface),
                                   fields.get(HeaderFields.member))
        removed = interface == MANAGER_INTERFACE and member == "SessionRemoved"
        locking = path.startswith(SESSION_PATHS + "/") and (
            (interface == SESSION_INTERFACE and member in ("Lock", "Unlock"))
            or (interface == PROPERTIES_INTERFACE and member == "PropertiesChanged"))
        if not (removed or locking):
            return  # the bus's own notices (NameAcquired) and anything else sent our way
        sender = fields.get(HeaderFields.sender)
        if not self._from_logind(conn, sender):
            log.warning("ignored a %s.%s signal that logind did not send (sender %s)", interface, member, sender)
            return
        if removed:
            self._sessions.pop(str(message.body[1]), None)
        elif member in ("Lock", "Unlock"):
            self._transition(conn, path, locked=member == "Lock")
        else:
            name, changed, invalidated = message.body
            if name != SESSION_INTERFACE:
                return
            if "LockedHint" in changed:
                self._transition(conn, path, locked=bool(changed["LockedHint"][1]))
            elif "LockedHint" in invalidated:
                self._transition(conn, path, locked=self._fetch(conn, path).locked)

    def _transition(self, conn: DBusConnection, path: str, *, locked: bool) -> None:
        known = self._sessions.get(path)
        # A session met for the first time opened after we connected: it started unlocked.
        previous = known.locked if known is not None else False
        self._sessions[path] = replace(known or self._fetch(conn, path), locked=locked)
        if previous == locked:
            return  # a Lock request followed by the locker's LockedHint is one lock
        info = self._sessions[path]
        change = ScreenLockChange(locked=locked, session=info.session, user=info.user, console=info.console)
        try:
            self._on_change(change)
        except Exception:
            log.exception("screen lock listener failed on %s", change)

    def _fetch(self, conn: DBusConnection, path: str) -> SessionInfo:
        reply = self._call(conn, Properties(DBusAddress(path, LOGIND, SESSION_INTERFACE)).get_all())
        return session_info(path, reply[0])

    def _from_logind(self, conn: DBusConnection, sender: str | None) -> bool:
        # Anyone on the bus may send a signal straight to us; only logind's are believed. Its
        # unique name changes when it restarts, so a stranger is looked up once more.
        if sender is not None and sender == self._logind_name:
            return True
        self._logind_name = self._logind_owner(conn)
        return sender is not None and sender == self._logind_name

    def _logind_owner(self, conn: DBusConnection) -> str:
        return str(self._call(conn, message_bus.GetNameOwner(LOGIND))[0])

    @staticmethod
    def _call(conn: DBusConnection, message: Any) -> Any:
        return unwrap_msg(conn.send_and_get_reply(message, timeout=CALL_TIMEOUT_S))

    def _report(self, problem: str | None) -> None:
        if problem == self._state:
            return  # said once; retries that fail the same way stay quiet
        self._state = problem
        if problem is None:
            log.info("watching systemd-logind for screen locks")
        else:
            log.warning("screen locks are not watched (staff stay signed in when the screen locks): %s", problem)
        try:
            self._on_state(problem)
        except Exception:
            log.exception("screen lock state listener failed")
