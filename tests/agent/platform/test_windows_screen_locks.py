"""Windows screen locks: the SCM's session-change notices, through fake pywin32 modules.

The fake ServiceFramework does what pywin32's does for these paths (win32serviceutil.py): it
reports GetAcceptedControls() with every status but START_PENDING, and ServiceCtrlHandlerEx
routes controls it does not know to SvcOtherEx, which by default calls SvcOther. The fake SCM
calls ServiceCtrlHandlerEx with (control, event type, (session id,)) as PythonService.cpp does.
"""

from __future__ import annotations

import queue
import sys
import threading
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent.binding.manager import BindingManager, DeviceAccess
from agent.localchannel.default_policy import default_policy_text
from agent.platform.base import ScreenLockChange
from agent.platform.windows import SERVICE_NAME, WindowsPlatform, make_service_class
from agent.platform.windows_locks import NOT_UNDER_SCM, WTS_SESSION_LOCK, WTS_SESSION_UNLOCK
from agent.policy import CurrentPolicy, Policy, parse_policy_body
from tests.agent.binding.live_hq import PASSWORD, LiveHq, live_hq

SERVICE_START_PENDING, SERVICE_STOP_PENDING, SERVICE_RUNNING = 2, 3, 4
SERVICE_ACCEPT_STOP, SERVICE_ACCEPT_SHUTDOWN, SERVICE_ACCEPT_SESSIONCHANGE = 0x1, 0x4, 0x80
SERVICE_CONTROL_STOP, SERVICE_CONTROL_PARAMCHANGE, SERVICE_CONTROL_SESSIONCHANGE = 1, 6, 14
WTS_SESSION_LOGON = 0x5
WTS_USER_NAME, WTS_CLIENT_PROTOCOL_TYPE = 5, 16


class FakeWinError(Exception):
    def __init__(self, winerror: int, funcname: str, strerror: str) -> None:
        super().__init__(winerror, funcname, strerror)
        self.winerror = winerror


@dataclass
class Scm:
    """The OS side: sessions to look up, what the service reported, and the notices to deliver."""

    session_info: dict[tuple[int, int], Any] = field(default_factory=dict)
    reported: list[tuple[int, int]] = field(default_factory=list)  # (status, accepted controls)
    other: list[int] = field(default_factory=list)
    running: threading.Event = field(default_factory=threading.Event)
    notices: list[tuple[int, int, Any]] = field(default_factory=list)
    under_scm: bool = True
    service: Any = None


def build_fakes(scm: Scm) -> dict[str, types.ModuleType]:
    win32service = types.ModuleType("win32service")
    win32service.SERVICE_START_PENDING = SERVICE_START_PENDING  # type: ignore[attr-defined]
    win32service.SERVICE_STOP_PENDING = SERVICE_STOP_PENDING  # type: ignore[attr-defined]
    win32service.SERVICE_RUNNING = SERVICE_RUNNING  # type: ignore[attr-defined]

    class ServiceFramework:
        def __init__(self, args: Any) -> None:
            self.args = args

        def GetAcceptedControls(self) -> int:
            accepted = 0
            if hasattr(self, "SvcStop"):
                accepted |= SERVICE_ACCEPT_STOP
            if hasattr(self, "SvcShutdown"):
                accepted |= SERVICE_ACCEPT_SHUTDOWN
            return accepted

        def ReportServiceStatus(self, status: int, waitHint: int = 5000, win32ExitCode: int = 0,
                                svcExitCode: int = 0) -> None:
            accepted = 0 if status == SERVICE_START_PENDING else self.GetAcceptedControls()
            scm.reported.append((status, accepted))

        def SvcOther(self, control: int) -> None:
            scm.other.append(control)

        def SvcOtherEx(self, control: int, event_type: int, data: Any) -> Any:
            return self.SvcOther(control)

        def ServiceCtrlHandlerEx(self, control: int, event_type: int, data: Any) -> Any:
            if control == SERVICE_CONTROL_STOP:
                return self.SvcStop()  # type: ignore[attr-defined]
            return self.SvcOtherEx(control, event_type, data)

        def SvcRun(self) -> None:
            self.ReportServiceStatus(SERVICE_RUNNING)
            self.SvcDoRun()  # type: ignore[attr-defined]
            self.ReportServiceStatus(SERVICE_STOP_PENDING)

    win32serviceutil = types.ModuleType("win32serviceutil")
    win32serviceutil.ServiceFramework = ServiceFramework  # type: ignore[attr-defined]

    servicemanager = types.ModuleType("servicemanager")
    servicemanager.EVENTLOG_INFORMATION_TYPE = 4  # type: ignore[attr-defined]
    servicemanager.PYS_SERVICE_STARTED, servicemanager.PYS_SERVICE_STOPPED = 1, 2  # type: ignore[attr-defined]
    servicemanager.LogMsg = lambda *args: None  # type: ignore[attr-defined]
    servicemanager.LogErrorMsg = lambda text: None  # type: ignore[attr-defined]
    servicemanager.Initialize = lambda *args: None  # type: ignore[attr-defined]
    hosted: list[Any] = []
    servicemanager.PrepareToHostSingle = hosted.append  # type: ignore[attr-defined]

    def start_dispatcher() -> None:
        if not scm.under_scm:
            raise FakeWinError(1063, "StartServiceCtrlDispatcher", "The service process could not connect")
        service = scm.service = hosted[-1]((SERVICE_NAME,))
        runner = threading.Thread(target=service.SvcRun, name="scm-service")
        runner.start()
        assert scm.running.wait(10)
        for control, event_type, data in scm.notices:  # on the SCM's control thread, as Windows does
            service.ServiceCtrlHandlerEx(control, event_type, data)
        service.ServiceCtrlHandlerEx(SERVICE_CONTROL_STOP, 0, None)
        runner.join(10)

    servicemanager.StartServiceCtrlDispatcher = start_dispatcher  # type: ignore[attr-defined]

    win32api = types.ModuleType("win32api")
    win32api.SetConsoleCtrlHandler = lambda handler, add: None  # type: ignore[attr-defined]

    win32ts = types.ModuleType("win32ts")
    win32ts.WTS_CURRENT_SERVER_HANDLE = 0  # type: ignore[attr-defined]
    win32ts.WTSUserName = WTS_USER_NAME  # type: ignore[attr-defined]
    win32ts.WTSClientProtocolType = WTS_CLIENT_PROTOCOL_TYPE  # type: ignore[attr-defined]

    def query(server: Any, session_id: int, info_class: int) -> Any:
        value = scm.session_info.get((session_id, info_class))
        if value is None:
            raise FakeWinError(7022, "WTSQuerySessionInformation", "The session does not exist")
        return value

    win32ts.WTSQuerySessionInformation = query  # type: ignore[attr-defined]
    return {"win32service": win32service, "win32serviceutil": win32serviceutil, "servicemanager": servicemanager,
            "win32api": win32api, "win32ts": win32ts}


@pytest.fixture
def scm(monkeypatch: pytest.MonkeyPatch) -> Scm:
    state = Scm(session_info={(1, WTS_USER_NAME): "clerk01", (1, WTS_CLIENT_PROTOCOL_TYPE): 0,
                              (2, WTS_USER_NAME): "admin", (2, WTS_CLIENT_PROTOCOL_TYPE): 2})
    for name, module in build_fakes(state).items():
        monkeypatch.setitem(sys.modules, name, module)
    return state


def watching_main(platform: WindowsPlatform, scm: Scm, on_change: Callable[[ScreenLockChange], None],
                  states: list[str | None], *, settle: Callable[[], None] = lambda: None) -> Callable[..., int]:
    """The agent's main as far as locks go: start the platform's watch, run until stopped, stop it."""

    def main(stop: threading.Event) -> int:
        watch = platform.screen_lock_watch()
        watch.start(on_change, states.append)
        scm.running.set()
        assert stop.wait(10)
        settle()
        assert watch.stop(2.0)
        return 0

    return main


def test_the_service_asks_for_session_change_notices(scm: Scm) -> None:
    platform = WindowsPlatform()
    assert platform.run_service(watching_main(platform, scm, lambda change: None, [])) == 0
    running = [accepted for status, accepted in scm.reported if status == SERVICE_RUNNING]
    assert running == [SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN | SERVICE_ACCEPT_SESSIONCHANGE]


def test_lock_and_unlock_notices_reach_the_listener_on_the_watchers_thread(scm: Scm) -> None:
    changes: queue.Queue[tuple[ScreenLockChange, str]] = queue.Queue()
    states: list[str | None] = []
    scm.notices = [(SERVICE_CONTROL_SESSIONCHANGE, WTS_SESSION_LOGON, (1,)),
                   (SERVICE_CONTROL_SESSIONCHANGE, WTS_SESSION_LOCK, (1,)),
                   (SERVICE_CONTROL_SESSIONCHANGE, WTS_SESSION_LOCK, (2,)),
                   (SERVICE_CONTROL_SESSIONCHANGE, WTS_SESSION_UNLOCK, (1,)),
                   (SERVICE_CONTROL_SESSIONCHANGE, WTS_SESSION_LOCK, (9,)),  # gone before it was looked up
                   (SERVICE_CONTROL_PARAMCHANGE, 0, None)]
    platform = WindowsPlatform()

    def settle() -> None:  # the notices are queued; let the watcher deliver them before stopping
        for _ in range(4):
            changes.put(changes.get(timeout=2))
        assert changes.qsize() == 4

    main = watching_main(platform, scm, lambda change: changes.put((change, threading.current_thread().name)),
                         states, settle=settle)
    assert platform.run_service(main) == 0
    assert states == [None]
    delivered = [changes.get_nowait() for _ in range(4)]
    assert {thread for _, thread in delivered} == {"tg-screen-lock"}
    assert [change for change, _ in delivered] == [
        ScreenLockChange(locked=True, session="1", user="clerk01", console=True),
        ScreenLockChange(locked=True, session="2", user="admin", console=False),
        ScreenLockChange(locked=False, session="1", user="clerk01", console=True),
        ScreenLockChange(locked=True, session="9", user=None, console=True),
    ]
    assert scm.other == [SERVICE_CONTROL_PARAMCHANGE]  # other controls still reach pywin32's default


def test_started_from_a_console_the_watch_says_it_sees_no_locks(scm: Scm) -> None:
    scm.under_scm = False
    scm.running.set()
    platform = WindowsPlatform()
    states: list[str | None] = []

    def main(stop: threading.Event) -> int:
        platform.screen_lock_watch().start(lambda change: None, states.append)
        return 0

    assert platform.run_service(main) == 0
    assert states == [NOT_UNDER_SCM]
    assert platform.screen_lock_watch().stop(1.0)


def test_a_service_built_without_a_watch_accepts_no_session_changes(scm: Scm) -> None:
    service = make_service_class(lambda stop: 0)((SERVICE_NAME,))
    assert service.GetAcceptedControls() == SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN
    service.ServiceCtrlHandlerEx(SERVICE_CONTROL_SESSIONCHANGE, WTS_SESSION_LOCK, (1,))
    assert scm.other == []


@pytest.fixture
def hq(tmp_path: Path) -> Iterator[LiveHq]:
    with live_hq(tmp_path / "hq") as server:
        server.staff("S001")
        yield server


def test_a_console_lock_under_the_scm_signs_the_staff_out(scm: Scm, hq: LiveHq, tmp_path: Path) -> None:
    from agent.platform.fake import FakePlatform

    client, key = hq.device("o1")
    events: list[Any] = []
    policy = CurrentPolicy(None, Policy(version=1, issued_at="-", body=parse_policy_body({}), document={},
                                        signature=""))
    manager = BindingManager(access=lambda: DeviceAccess(client=client, key=key, outlet_id="o1"), policy=policy,
                             policy_text=lambda: {**default_policy_text(), "version": 1}, put_event=events.append,
                             on_change=lambda staff: None, platform=FakePlatform(tmp_path))
    manager.signin("S001", PASSWORD)
    scm.notices = [(SERVICE_CONTROL_SESSIONCHANGE, WTS_SESSION_LOCK, (2,)),
                   (SERVICE_CONTROL_SESSIONCHANGE, WTS_SESSION_LOCK, (1,))]
    signed_out = threading.Event()

    def on_change(change: ScreenLockChange) -> None:
        manager.screen_lock_changed(change)
        if manager.staff() is None:
            signed_out.set()

    platform = WindowsPlatform()
    main = watching_main(platform, scm, on_change, [], settle=lambda: signed_out.wait(2))
    assert platform.run_service(main) == 0
    assert manager.staff() is None
    assert [e.body["reason"] for e in events if e.kind == "session.signed_out"] == ["screen_locked"]
