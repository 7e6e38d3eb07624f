"""The Windows platform against fake pywin32 modules and a fake ``ctypes.windll``.

This is the one place fakes are right: this Linux machine has no Windows API. The fakes behave
like the real calls as documented (argument order, return shapes, the 1063 error outside the
SCM, SvcRun's status reports) so the code under test is the code that runs on Windows.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from agent.platform import UserSession, current_platform
from agent.platform.windows import (
    CTRL_CLOSE_EVENT,
    SERVICE_DISPLAY_NAME,
    SERVICE_NAME,
    ServiceFailed,
    WindowsPlatform,
    console_close_handler,
    last_input_idle_seconds,
    make_service_class,
)

SERVICE_STOPPED, SERVICE_RUNNING, SERVICE_STOP_PENDING = 1, 4, 3
EVENTLOG_INFORMATION_TYPE = 4
PYS_SERVICE_STARTED, PYS_SERVICE_STOPPED = 0x40000002, 0x40000003
WTS_ACTIVE, WTS_DISCONNECTED, WTS_LISTEN = 0, 4, 6
WTS_USER_NAME, WTS_CLIENT_NAME, WTS_CLIENT_PROTOCOL_TYPE = 5, 10, 16


class FakeWinError(Exception):
    """Shaped like pywintypes.error: (winerror, funcname, strerror) with a .winerror attribute."""

    def __init__(self, winerror: int, funcname: str, strerror: str) -> None:
        super().__init__(winerror, funcname, strerror)
        self.winerror = winerror


@dataclass
class Pywin32:
    dispatcher_mode: str = "console"  # "console": not started by the SCM; "scm": started by it
    hosted: list[Any] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    messages: list[tuple[str, Any]] = field(default_factory=list)
    instances: list[Any] = field(default_factory=list)
    run_errors: list[BaseException] = field(default_factory=list)
    ctrl_handlers: list[tuple[Callable[[int], bool], bool]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    session_info: dict[tuple[int, int], Any] = field(default_factory=dict)
    main_started: threading.Event = field(default_factory=threading.Event)


def build_fakes(state: Pywin32) -> dict[str, types.ModuleType]:
    win32service = types.ModuleType("win32service")
    win32service.SERVICE_STOPPED = SERVICE_STOPPED  # type: ignore[attr-defined]
    win32service.SERVICE_RUNNING = SERVICE_RUNNING  # type: ignore[attr-defined]
    win32service.SERVICE_STOP_PENDING = SERVICE_STOP_PENDING  # type: ignore[attr-defined]

    class ServiceFramework:
        def __init__(self, args: Any) -> None:
            self.args = args
            self.reported: list[tuple[int, int]] = []
            state.instances.append(self)

        def ReportServiceStatus(
            self, status: int, waitHint: int = 5000, win32ExitCode: int = 0, svcExitCode: int = 0
        ) -> None:
            self.reported.append((status, waitHint))

        def SvcRun(self) -> None:  # what pywin32's ServiceFramework.SvcRun does
            self.ReportServiceStatus(SERVICE_RUNNING)
            self.SvcDoRun()  # type: ignore[attr-defined]
            self.ReportServiceStatus(SERVICE_STOP_PENDING)

    win32serviceutil = types.ModuleType("win32serviceutil")
    win32serviceutil.ServiceFramework = ServiceFramework  # type: ignore[attr-defined]

    servicemanager = types.ModuleType("servicemanager")
    servicemanager.EVENTLOG_INFORMATION_TYPE = EVENTLOG_INFORMATION_TYPE  # type: ignore[attr-defined]
    servicemanager.PYS_SERVICE_STARTED = PYS_SERVICE_STARTED  # type: ignore[attr-defined]
    servicemanager.PYS_SERVICE_STOPPED = PYS_SERVICE_STOPPED  # type: ignore[attr-defined]
    servicemanager.Initialize = lambda *a: state.calls.append("Initialize")  # type: ignore[attr-defined]
    servicemanager.PrepareToHostSingle = state.hosted.append  # type: ignore[attr-defined]
    servicemanager.LogMsg = lambda kind, ident, strings: state.messages.append(("LogMsg", ident))  # type: ignore[attr-defined]
    servicemanager.LogErrorMsg = lambda text: state.messages.append(("LogErrorMsg", text))  # type: ignore[attr-defined]

    def start_dispatcher() -> None:
        state.calls.append("StartServiceCtrlDispatcher")
        if state.dispatcher_mode == "console":
            raise FakeWinError(1063, "StartServiceCtrlDispatcher", "The service process could not connect")
        if state.dispatcher_mode == "denied":
            raise FakeWinError(5, "StartServiceCtrlDispatcher", "Access is denied.")
        # The SCM: create the service, run it on its own thread, send STOP once main is up.
        service = state.hosted[-1]((SERVICE_NAME,))

        def run() -> None:
            try:
                service.SvcRun()
            except BaseException as exc:  # the C framework reports SERVICE_STOPPED with an error
                state.run_errors.append(exc)

        runner = threading.Thread(target=run, name="scm-service")
        runner.start()
        assert state.main_started.wait(10)
        service.SvcStop()
        runner.join(10)
        assert not runner.is_alive()

    servicemanager.StartServiceCtrlDispatcher = start_dispatcher  # type: ignore[attr-defined]

    win32api = types.ModuleType("win32api")
    win32api.SetConsoleCtrlHandler = lambda handler, add: state.ctrl_handlers.append((handler, add))  # type: ignore[attr-defined]

    win32ts = types.ModuleType("win32ts")
    win32ts.WTS_CURRENT_SERVER_HANDLE = 0  # type: ignore[attr-defined]
    win32ts.WTSUserName = WTS_USER_NAME  # type: ignore[attr-defined]
    win32ts.WTSClientName = WTS_CLIENT_NAME  # type: ignore[attr-defined]
    win32ts.WTSClientProtocolType = WTS_CLIENT_PROTOCOL_TYPE  # type: ignore[attr-defined]
    win32ts.WTSEnumerateSessions = lambda server, version=1, reserved=0: tuple(state.sessions)  # type: ignore[attr-defined]

    def query(server: Any, session_id: int, info_class: int) -> Any:
        value = state.session_info.get((session_id, info_class))
        if isinstance(value, Exception):
            raise value
        return value

    win32ts.WTSQuerySessionInformation = query  # type: ignore[attr-defined]
    return {
        "win32service": win32service,
        "win32serviceutil": win32serviceutil,
        "servicemanager": servicemanager,
        "win32api": win32api,
        "win32ts": win32ts,
    }


@pytest.fixture
def pywin32(monkeypatch: pytest.MonkeyPatch) -> Pywin32:
    state = Pywin32()
    for name, module in build_fakes(state).items():
        monkeypatch.setitem(sys.modules, name, module)
    return state


def waiting_main(state: Pywin32, code: int) -> Callable[[threading.Event], int]:
    def main(stop: threading.Event) -> int:
        state.main_started.set()
        assert stop.wait(10), "stop never came"
        return code

    return main


# --- the service class -------------------------------------------------------------------------


def test_service_class_carries_the_service_names(pywin32: Pywin32) -> None:
    cls = make_service_class(lambda stop: 0)
    assert cls._svc_name_ == SERVICE_NAME == "TerminalGuard"
    assert cls._svc_display_name_ == SERVICE_DISPLAY_NAME == "Terminal Guard 终端卫士"
    assert cls._svc_description_


def test_svc_stop_reports_stop_pending_and_sets_the_event(pywin32: Pywin32) -> None:
    service = make_service_class(lambda stop: 0)((SERVICE_NAME,))
    assert not service.stop_event.is_set()
    service.SvcStop()
    assert service.stop_event.is_set()
    status, wait_hint = service.reported[-1]
    assert status == SERVICE_STOP_PENDING
    assert wait_hint >= 5000


def test_system_shutdown_stops_like_a_stop_request(pywin32: Pywin32) -> None:
    service = make_service_class(lambda stop: 0)((SERVICE_NAME,))
    service.SvcShutdown()
    assert service.stop_event.is_set()


def test_svc_do_run_logs_start_and_stop_and_runs_main_with_the_event(pywin32: Pywin32) -> None:
    received: list[threading.Event] = []

    def main(stop: threading.Event) -> int:
        received.append(stop)
        return 0

    cls = make_service_class(main)
    service = cls((SERVICE_NAME,))
    service.SvcDoRun()
    assert received == [service.stop_event]
    assert pywin32.messages == [("LogMsg", PYS_SERVICE_STARTED), ("LogMsg", PYS_SERVICE_STOPPED)]
    assert cls.last_exit_code == 0


def test_main_that_raises_is_logged_with_traceback_and_fails_the_service(pywin32: Pywin32) -> None:
    def main(stop: threading.Event) -> int:
        raise OSError("state dir vanished")

    cls = make_service_class(main)
    with pytest.raises(ServiceFailed, match="exited with code 1"):
        cls((SERVICE_NAME,)).SvcDoRun()
    errors = [text for kind, text in pywin32.messages if kind == "LogErrorMsg"]
    assert len(errors) == 1
    assert "Traceback" in errors[0] and "OSError: state dir vanished" in errors[0]
    assert cls.last_exit_code == 1


# --- run_service -------------------------------------------------------------------------------


def test_started_by_the_scm_runs_main_as_a_service_until_stopped(pywin32: Pywin32) -> None:
    pywin32.dispatcher_mode = "scm"
    assert WindowsPlatform().run_service(waiting_main(pywin32, 0)) == 0
    assert pywin32.calls == ["Initialize", "StartServiceCtrlDispatcher"]
    assert pywin32.hosted[0]._svc_name_ == SERVICE_NAME
    (service,) = pywin32.instances
    statuses = [status for status, _ in service.reported]
    assert statuses == [SERVICE_RUNNING, SERVICE_STOP_PENDING, SERVICE_STOP_PENDING]
    assert pywin32.run_errors == []
    assert pywin32.ctrl_handlers == []  # no console handling under the SCM


def test_service_exit_code_is_returned_and_reported_as_a_failure(pywin32: Pywin32) -> None:
    pywin32.dispatcher_mode = "scm"
    assert WindowsPlatform().run_service(waiting_main(pywin32, 4)) == 4
    assert len(pywin32.run_errors) == 1 and isinstance(pywin32.run_errors[0], ServiceFailed)


def test_started_from_a_console_runs_in_the_foreground_until_ctrl_c(pywin32: Pywin32) -> None:
    previous = signal.getsignal(signal.SIGINT)

    def main(stop: threading.Event) -> int:
        os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C delivers to a Windows console process
        assert stop.wait(10)
        return 5

    assert WindowsPlatform().run_service(main) == 5
    assert pywin32.calls == ["Initialize", "StartServiceCtrlDispatcher"]
    assert pywin32.instances == []
    (added, add_flag), (removed, remove_flag) = pywin32.ctrl_handlers
    assert (add_flag, remove_flag) == (True, False)
    assert added is removed
    assert signal.getsignal(signal.SIGINT) is previous


def test_other_dispatcher_errors_are_not_mistaken_for_a_console(pywin32: Pywin32) -> None:
    pywin32.dispatcher_mode = "denied"
    with pytest.raises(FakeWinError, match="Access is denied"):
        WindowsPlatform().run_service(lambda stop: 0)


def test_console_close_stops_main_and_waits_for_it() -> None:
    stop, finished = threading.Event(), threading.Event()
    handler = console_close_handler(stop, finished)
    assert handler(0) is False  # Ctrl-C: left to Python's SIGINT handling
    assert handler(1) is False  # Ctrl-Break: SIGBREAK
    assert not stop.is_set()

    def main_finishing() -> None:
        assert stop.wait(10)
        finished.set()

    worker = threading.Thread(target=main_finishing)
    worker.start()
    assert handler(CTRL_CLOSE_EVENT) is True
    worker.join(10)
    assert stop.is_set() and finished.is_set()


# --- sessions ----------------------------------------------------------------------------------


def test_user_sessions_come_from_wts_with_rdp_marked_remote(pywin32: Pywin32, monkeypatch: pytest.MonkeyPatch) -> None:
    pywin32.sessions = [
        {"SessionId": 0, "WinStationName": "Services", "State": WTS_DISCONNECTED},
        {"SessionId": 1, "WinStationName": "Console", "State": WTS_ACTIVE},
        {"SessionId": 2, "WinStationName": "RDP-Tcp#7", "State": WTS_ACTIVE},
        {"SessionId": 3, "WinStationName": "", "State": WTS_DISCONNECTED},
        {"SessionId": 4, "WinStationName": "ICA-CGP#1", "State": WTS_ACTIVE},
        {"SessionId": 5, "WinStationName": "Console", "State": WTS_ACTIVE},
        {"SessionId": 65536, "WinStationName": "RDP-Tcp", "State": WTS_LISTEN},
    ]
    info = pywin32.session_info
    info.update(
        {
            (0, WTS_USER_NAME): "",
            (1, WTS_USER_NAME): "clerk01",
            (1, WTS_CLIENT_PROTOCOL_TYPE): 0,
            (2, WTS_USER_NAME): "clerk02",
            (2, WTS_CLIENT_PROTOCOL_TYPE): 2,
            (2, WTS_CLIENT_NAME): "HOME-LAPTOP",
            (3, WTS_USER_NAME): "clerk03",  # a disconnected RDP session keeps its protocol
            (3, WTS_CLIENT_PROTOCOL_TYPE): 2,
            (3, WTS_CLIENT_NAME): "",
            (4, WTS_USER_NAME): "clerk04",
            (4, WTS_CLIENT_PROTOCOL_TYPE): 1,
            (4, WTS_CLIENT_NAME): "THIN-CLIENT",
            (5, WTS_USER_NAME): FakeWinError(5, "WTSQuerySessionInformation", "Access is denied."),
            (65536, WTS_USER_NAME): "",
        }
    )
    # psutil.users() on Windows reads logon times from the same WTS sessions; here it is faked too.
    row = types.SimpleNamespace(name="CLERK01", terminal=None, host=None, started=1700000000.0, pid=None)
    monkeypatch.setattr(psutil, "users", lambda: [row])
    sessions = WindowsPlatform().user_sessions()
    assert sessions == [
        UserSession(user="clerk01", terminal="Console", host=None, started=1700000000.0, remote=False),
        UserSession(user="clerk02", terminal="RDP-Tcp#7", host="HOME-LAPTOP", started=0.0, remote=True),
        UserSession(user="clerk03", terminal=None, host=None, started=0.0, remote=True),
        UserSession(user="clerk04", terminal="ICA-CGP#1", host="THIN-CLIENT", started=0.0, remote=True),
    ]


# --- idle time ---------------------------------------------------------------------------------


@dataclass
class FakeWindll:
    session_id: int = 1
    tick: int = 0
    last_input: int = 0
    input_ok: bool = True

    def __post_init__(self) -> None:
        self.kernel32 = types.SimpleNamespace(
            GetTickCount=lambda: self.tick, ProcessIdToSessionId=self._process_id_to_session_id
        )
        self.user32 = types.SimpleNamespace(GetLastInputInfo=self._get_last_input_info)

    def _process_id_to_session_id(self, pid: int, ref: Any) -> int:
        assert pid == os.getpid()
        ref._obj.value = self.session_id
        return 1

    def _get_last_input_info(self, ref: Any) -> int:
        info = ref._obj
        assert info.cbSize == 8, "cbSize must be set before the call"
        info.dwTime = self.last_input
        return 1 if self.input_ok else 0


def test_idle_is_ticks_since_last_input() -> None:
    assert last_input_idle_seconds(FakeWindll(tick=100_000, last_input=40_000)) == pytest.approx(60.0)


def test_idle_survives_the_49_day_tick_wraparound() -> None:
    windll = FakeWindll(tick=5_000, last_input=0xFFFF_F000)
    assert last_input_idle_seconds(windll) == pytest.approx(9.096)


def test_idle_is_unknown_in_session_zero_or_when_the_call_fails() -> None:
    assert last_input_idle_seconds(FakeWindll(session_id=0, tick=10, last_input=0)) is None
    assert last_input_idle_seconds(FakeWindll(tick=10, last_input=0, input_ok=False)) is None


def test_platform_idle_uses_ctypes_windll(monkeypatch: pytest.MonkeyPatch) -> None:
    assert WindowsPlatform().idle_seconds() is None  # no windll on Linux
    monkeypatch.setattr(ctypes, "windll", FakeWindll(tick=3_000, last_input=1_000), raising=False)
    assert WindowsPlatform().idle_seconds() == pytest.approx(2.0)


# --- paths and selection -----------------------------------------------------------------------


def test_paths_live_under_programdata(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROGRAMDATA", str(tmp_path))
    platform = WindowsPlatform()
    assert platform.default_state_dir() == tmp_path / "TerminalGuard"
    assert platform.default_config_path() == tmp_path / "TerminalGuard" / "agent.toml"
    monkeypatch.delenv("PROGRAMDATA")
    assert str(platform.default_state_dir()).startswith("C:\\ProgramData")


def test_current_platform_on_windows_is_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    assert isinstance(current_platform(), WindowsPlatform)
    assert current_platform().name == "windows"
