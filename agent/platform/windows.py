"""Windows: ProgramData paths, WTS sessions, GetLastInputInfo idle time, SCM session-change
screen locks and an SCM service.

pywin32 modules are imported inside the functions that need them, so this module imports on
Linux, where its tests run against fake pywin32 modules (the only place fakes stand in for the
OS, since there is no Windows API to call here).

When the Service Control Manager starts ``terminal-guard run``, ``run_service`` hands the
process to the service dispatcher; started from a console the dispatcher refuses with
ERROR_FAILED_SERVICE_CONTROLLER_CONNECT and the agent runs in the foreground until Ctrl-C,
Ctrl-Break or the console window closes.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from agent.platform.base import ScreenLockWatch, ServiceMain, UserSession
from agent.platform.stop_signals import run_until_stopped
from agent.platform.windows_locks import WtsLockWatch

log = logging.getLogger(__name__)

SERVICE_NAME = "TerminalGuard"
SERVICE_DISPLAY_NAME = "Terminal Guard 终端卫士"
SERVICE_DESCRIPTION = "Watches this outlet PC for scraping, remote-control and bulk-export tools."
APP_DIR_NAME = "TerminalGuard"

ERROR_FAILED_SERVICE_CONTROLLER_CONNECT = 1063
WTS_PROTOCOL_TYPE_ICA = 1
WTS_PROTOCOL_TYPE_RDP = 2
# winsvc.h; spelled out here rather than trusting every pywin32 build to export them.
SERVICE_CONTROL_SESSIONCHANGE = 0x0E
SERVICE_ACCEPT_SESSIONCHANGE = 0x80
CTRL_CLOSE_EVENT = 2
CTRL_LOGOFF_EVENT = 5
CTRL_SHUTDOWN_EVENT = 6
# Windows ends a console process 5 s after CTRL_CLOSE_EVENT; leave main that long, less a margin.
CLOSE_GRACE_S = 4.5
# How long the SCM should wait for a stop before it calls the service hung: a spool flush and
# a last heartbeat fit easily.
STOP_WAIT_HINT_MS = 30_000


class ServiceFailed(RuntimeError):
    """Raised out of SvcDoRun so the SCM records a failed stop and runs its recovery actions."""


def program_data() -> Path:
    return Path(os.environ.get("PROGRAMDATA") or r"C:\ProgramData")


class WindowsPlatform:
    name = "windows"

    def __init__(self) -> None:
        # One per platform: the service class built by run_service feeds the watch the service uses.
        self._screen_locks = WtsLockWatch(session_user_and_remote)

    def default_config_path(self) -> Path:
        return program_data() / APP_DIR_NAME / "agent.toml"

    def default_state_dir(self) -> Path:
        return program_data() / APP_DIR_NAME

    def user_sessions(self) -> list[UserSession]:
        import win32ts

        logons = _logon_times()
        server = win32ts.WTS_CURRENT_SERVER_HANDLE
        found = (_describe_session(win32ts, server, info, logons) for info in win32ts.WTSEnumerateSessions(server))
        return [session for session in found if session is not None]

    def idle_seconds(self) -> float | None:
        windll = getattr(ctypes, "windll", None)
        if windll is None:
            return None
        return last_input_idle_seconds(windll)

    def screen_lock_watch(self) -> ScreenLockWatch:
        return self._screen_locks

    def run_service(self, main: ServiceMain) -> int:
        service_class = make_service_class(main, screen_locks=self._screen_locks)
        if dispatch_to_scm(service_class):
            code = service_class.last_exit_code
            return code if isinstance(code, int) else 0
        return run_console(main)


def _logon_times() -> dict[str, float]:
    """Earliest logon time per user name; psutil reads it from the same WTS session data."""
    times: dict[str, float] = {}
    for entry in psutil.users():
        key = entry.name.lower()
        times[key] = min(times.get(key, entry.started), entry.started)
    return times


def _query(win32ts: Any, server: Any, session_id: int, info_class: int, default: Any) -> Any:
    try:
        return win32ts.WTSQuerySessionInformation(server, session_id, info_class)
    except Exception as exc:  # pywintypes.error: the session went away or is not ours to read
        log.debug("WTSQuerySessionInformation(%s, %s) failed: %s", session_id, info_class, exc)
        return default


def _describe_session(win32ts: Any, server: Any, info: dict[str, Any], logons: dict[str, float]) -> UserSession | None:
    session_id = int(info["SessionId"])
    user = _query(win32ts, server, session_id, win32ts.WTSUserName, "")
    if not user:
        return None  # session 0 (services) and the RDP listener have no user
    station = str(info.get("WinStationName") or "")
    protocol = _query(win32ts, server, session_id, win32ts.WTSClientProtocolType, 0)
    remote = protocol in (WTS_PROTOCOL_TYPE_ICA, WTS_PROTOCOL_TYPE_RDP) or station.upper().startswith("RDP-TCP#")
    host = _query(win32ts, server, session_id, win32ts.WTSClientName, "") if remote else ""
    return UserSession(
        user=str(user),
        terminal=station or None,
        host=str(host) or None,
        started=logons.get(str(user).lower(), 0.0),
        remote=remote,
    )


def session_user_and_remote(session_id: int) -> tuple[str | None, bool]:
    """Who is in a session and whether it is an RDP/ICA one, for a screen-lock notice."""
    import win32ts

    server = win32ts.WTS_CURRENT_SERVER_HANDLE
    user = _query(win32ts, server, session_id, win32ts.WTSUserName, "")
    protocol = _query(win32ts, server, session_id, win32ts.WTSClientProtocolType, 0)
    return (str(user) or None), protocol in (WTS_PROTOCOL_TYPE_ICA, WTS_PROTOCOL_TYPE_RDP)


class _LastInputInfo(ctypes.Structure):
    _fields_ = [("cbSize", ctypes.c_uint), ("dwTime", ctypes.c_uint)]


def last_input_idle_seconds(windll: Any) -> float | None:
    """Seconds since the last keyboard or mouse input in this process's session.

    GetLastInputInfo only sees the caller's own session. The service lives in session 0, where
    nobody types, so there the answer would be a confident lie; it returns ``None`` instead and
    the tray (which runs in the user's session) is the one that can know.
    """
    session = ctypes.c_uint(0)
    if windll.kernel32.ProcessIdToSessionId(os.getpid(), ctypes.byref(session)) and session.value == 0:
        return None
    info = _LastInputInfo()
    info.cbSize = ctypes.sizeof(info)
    if not windll.user32.GetLastInputInfo(ctypes.byref(info)):
        return None
    # Both counters are 32-bit milliseconds that wrap every 49.7 days; modular subtraction
    # stays right across the wrap.
    elapsed_ms = (int(windll.kernel32.GetTickCount()) - info.dwTime) & 0xFFFFFFFF
    return elapsed_ms / 1000.0


def make_service_class(main: ServiceMain, *, screen_locks: WtsLockWatch | None = None) -> Any:
    """Build the pywin32 service class that runs ``main`` when the SCM starts the service.

    With ``screen_locks`` the service also accepts session-change notices and passes lock and
    unlock on to it.
    """
    import servicemanager
    import win32service
    import win32serviceutil

    class TerminalGuardService(win32serviceutil.ServiceFramework):
        _svc_name_ = SERVICE_NAME
        _svc_display_name_ = SERVICE_DISPLAY_NAME
        _svc_description_ = SERVICE_DESCRIPTION
        last_exit_code: int | None = None

        def __init__(self, args: Any) -> None:
            super().__init__(args)
            self.stop_event = threading.Event()

        def SvcStop(self) -> None:
            self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING, waitHint=STOP_WAIT_HINT_MS)
            self.stop_event.set()

        def SvcShutdown(self) -> None:
            # Defining it makes the SCM send us shutdown notices: stop cleanly, flush the spool.
            self.SvcStop()

        def GetAcceptedControls(self) -> int:
            # pywin32 derives stop and shutdown from the Svc* methods; session changes must be asked for.
            accepted = int(super().GetAcceptedControls())
            if screen_locks is not None:
                accepted |= SERVICE_ACCEPT_SESSIONCHANGE
            return accepted

        def SvcOtherEx(self, control: int, event_type: int, data: Any) -> Any:
            if control != SERVICE_CONTROL_SESSIONCHANGE:
                return super().SvcOtherEx(control, event_type, data)
            if screen_locks is not None:
                # pywin32 passes the WTSSESSION_NOTIFICATION as (dwSessionId,)
                session_id = data[0] if isinstance(data, tuple | list) else data
                screen_locks.notify(int(event_type), int(session_id))
            return None

        def SvcDoRun(self) -> None:
            if screen_locks is not None:
                screen_locks.attach()
            servicemanager.LogMsg(
                servicemanager.EVENTLOG_INFORMATION_TYPE, servicemanager.PYS_SERVICE_STARTED, (SERVICE_NAME, "")
            )
            try:
                code = main(self.stop_event)
            except Exception:
                servicemanager.LogErrorMsg(f"{SERVICE_NAME} stopped on an error:\n{traceback.format_exc()}")
                code = 1
            type(self).last_exit_code = code
            servicemanager.LogMsg(
                servicemanager.EVENTLOG_INFORMATION_TYPE, servicemanager.PYS_SERVICE_STOPPED, (SERVICE_NAME, "")
            )
            if code != 0:
                raise ServiceFailed(f"{SERVICE_NAME} exited with code {code}")

    return TerminalGuardService


def dispatch_to_scm(service_class: Any) -> bool:
    """Hand this process to the SCM; False when it was not started by the SCM (a console)."""
    import servicemanager

    servicemanager.Initialize()
    servicemanager.PrepareToHostSingle(service_class)
    try:
        servicemanager.StartServiceCtrlDispatcher()
    except Exception as exc:
        if getattr(exc, "winerror", None) == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT:
            return False
        raise
    return True


def console_close_handler(stop: threading.Event, finished: threading.Event) -> Callable[[int], bool]:
    """A SetConsoleCtrlHandler routine for the events Python's signal module never sees.

    Ctrl-C and Ctrl-Break are passed on (``False``) to Python, which turns them into SIGINT and
    SIGBREAK. Closing the window, logoff and shutdown set the stop event and hold the process
    until main has finished or the grace time is used up, since returning lets Windows kill us.
    """

    def handler(ctrl_type: int) -> bool:
        if ctrl_type not in (CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT):
            return False
        stop.set()
        finished.wait(CLOSE_GRACE_S)
        return True

    return handler


def run_console(main: ServiceMain) -> int:
    import win32api

    stop = threading.Event()
    finished = threading.Event()
    handler = console_close_handler(stop, finished)
    signums = [signal.SIGINT]
    if hasattr(signal, "SIGBREAK"):
        signums.append(signal.SIGBREAK)
    win32api.SetConsoleCtrlHandler(handler, True)
    try:
        return run_until_stopped(main, signums, stop=stop, finished=finished)
    finally:
        win32api.SetConsoleCtrlHandler(handler, False)
