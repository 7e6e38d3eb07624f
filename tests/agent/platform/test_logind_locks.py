"""The Linux screen-lock watcher against a real dbus-daemon with a played systemd-logind on it."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.backoff import Backoff
from agent.platform.base import ScreenLockChange
from agent.platform.linux import LinuxPlatform
from agent.platform.logind import LogindLockWatch, session_info
from tests.agent.platform.fake_logind import FakeLogind, FakeSession, private_bus, spoof_signal

REPORT_WITHIN_S = 1.0


class Listener:
    def __init__(self) -> None:
        self.changes: queue.Queue[ScreenLockChange] = queue.Queue()
        self.states: queue.Queue[str | None] = queue.Queue()

    def next_change(self, timeout: float = REPORT_WITHIN_S) -> ScreenLockChange:
        return self.changes.get(timeout=timeout)

    def no_change(self, wait: float = 0.3) -> bool:
        try:
            change = self.changes.get(timeout=wait)
        except queue.Empty:
            return True
        raise AssertionError(f"unexpected {change}")

    def next_state(self, timeout: float = 5.0) -> str | None:
        return self.states.get(timeout=timeout)


def quick_retry() -> Backoff:
    return Backoff(0.02, 0.05)


def clerk_sessions() -> list[FakeSession]:
    return [FakeSession("c1", "clerk"), FakeSession("s7", "admin", seat="", remote=True)]


@pytest.fixture
def bus() -> Iterator[str]:
    with private_bus() as address:
        yield address


@pytest.fixture
def logind(bus: str) -> Iterator[FakeLogind]:
    fake = FakeLogind(bus, clerk_sessions())
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def watching(bus: str, logind: FakeLogind) -> Iterator[tuple[LogindLockWatch, Listener]]:
    watch, listener = LogindLockWatch(bus, retry=quick_retry()), Listener()
    watch.start(listener.changes.put, listener.states.put)
    assert listener.next_state() is None, "the watcher did not reach logind"
    try:
        yield watch, listener
    finally:
        assert watch.stop(2.0)


def watcher_thread() -> threading.Thread:
    (thread,) = [t for t in threading.enumerate() if t.name == "tg-screen-lock"]
    return thread


def test_a_locked_hint_is_reported_within_a_second(watching: tuple[LogindLockWatch, Listener],
                                                   logind: FakeLogind) -> None:
    _, listener = watching
    sent = time.monotonic()
    logind.set_locked_hint("c1", True)
    assert listener.next_change() == ScreenLockChange(locked=True, session="c1", user="clerk", console=True)
    assert time.monotonic() - sent < REPORT_WITHIN_S
    logind.set_locked_hint("c1", False)
    assert listener.next_change() == ScreenLockChange(locked=False, session="c1", user="clerk", console=True)


def test_a_lock_request_and_the_lockers_hint_are_one_lock(watching: tuple[LogindLockWatch, Listener],
                                                          logind: FakeLogind) -> None:
    _, listener = watching
    logind.lock_request("c1")
    assert listener.next_change().locked is True
    logind.set_locked_hint("c1", True)
    assert listener.no_change()
    logind.unlock_request("c1")
    assert listener.next_change().locked is False
    logind.set_locked_hint("c1", False)
    assert listener.no_change()


def test_an_invalidated_hint_is_read_back_from_logind(watching: tuple[LogindLockWatch, Listener],
                                                      logind: FakeLogind) -> None:
    _, listener = watching
    logind.set_locked_hint("c1", True, invalidate=True)
    assert listener.next_change().locked is True


def test_a_remote_session_is_reported_as_not_the_console(watching: tuple[LogindLockWatch, Listener],
                                                         logind: FakeLogind) -> None:
    _, listener = watching
    logind.set_locked_hint("s7", True)
    assert listener.next_change() == ScreenLockChange(locked=True, session="s7", user="admin", console=False)


def test_a_session_opened_after_the_watcher_started_is_followed(watching: tuple[LogindLockWatch, Listener],
                                                                logind: FakeLogind) -> None:
    _, listener = watching
    logind.add(FakeSession("c2", "night-clerk"))
    logind.lock_request("c2")
    assert listener.next_change() == ScreenLockChange(locked=True, session="c2", user="night-clerk", console=True)
    logind.remove("c2")
    logind.set_locked_hint("c1", True)  # the watcher is still at work after the removal
    assert listener.next_change().session == "c1"


def test_a_lock_signal_from_anyone_but_logind_is_ignored(watching: tuple[LogindLockWatch, Listener], bus: str,
                                                         logind: FakeLogind, caplog: pytest.LogCaptureFixture) -> None:
    _, listener = watching
    assert spoof_signal(bus, logind.sessions["c1"]) >= 2  # the watcher and the fake logind
    assert listener.no_change()
    assert "that logind did not send" in caplog.text
    logind.lock_request("c1")
    assert listener.next_change().locked is True


def test_stop_wakes_the_blocking_receive_at_once(bus: str, logind: FakeLogind) -> None:
    watch, listener = LogindLockWatch(bus), Listener()
    watch.start(listener.changes.put, listener.states.put)
    assert listener.next_state() is None
    thread = watcher_thread()
    started = time.monotonic()
    assert watch.stop(2.0)
    assert time.monotonic() - started < 0.5 and not thread.is_alive()


def _thread_counters(native_id: int) -> tuple[int, int]:
    """(context switches, CPU ticks) of one thread of this process, from /proc."""
    status = Path(f"/proc/self/task/{native_id}/status").read_text()
    switches = sum(int(line.split()[1]) for line in status.splitlines() if "ctxt_switches:" in line)
    stat = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return switches, int(stat[11]) + int(stat[12])  # utime + stime


def test_an_idle_watcher_sleeps_in_the_kernel(watching: tuple[LogindLockWatch, Listener]) -> None:
    native_id = watcher_thread().native_id
    assert native_id is not None
    time.sleep(0.2)
    switches, ticks = _thread_counters(native_id)
    time.sleep(2.0)
    switches_after, ticks_after = _thread_counters(native_id)
    # A poll loop, even at 10 Hz, would wake twenty times here.
    assert switches_after - switches == 0 and ticks_after == ticks


def test_no_bus_is_said_once_and_the_watcher_keeps_trying(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="agent.platform.logind")
    watch, listener = LogindLockWatch(f"unix:path={tmp_path / 'no-bus'}", retry=quick_retry()), Listener()
    watch.start(listener.changes.put, listener.states.put)
    problem = listener.next_state()
    assert problem is not None and problem.startswith("no D-Bus system bus")
    time.sleep(0.5)  # some ten more attempts, all failing the same way
    assert watcher_thread().is_alive()
    assert listener.states.empty()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "screen locks are not watched" in warnings[0].getMessage()
    assert watch.stop(1.0)


def test_a_bus_without_logind_is_said_then_logind_is_picked_up_when_it_appears(bus: str) -> None:
    watch, listener = LogindLockWatch(bus, retry=quick_retry()), Listener()
    watch.start(listener.changes.put, listener.states.put)
    problem = listener.next_state()
    assert problem is not None and "systemd-logind is not on the system bus" in problem
    logind = FakeLogind(bus, clerk_sessions())
    try:
        assert listener.next_state() is None
        logind.lock_request("c1")
        assert listener.next_change().locked is True
    finally:
        assert watch.stop(2.0)
        logind.close()


def test_losing_the_bus_is_said_and_the_thread_lives_on() -> None:
    with private_bus() as other:
        watch, listener = LogindLockWatch(other, retry=quick_retry()), Listener()
        fake = FakeLogind(other, clerk_sessions())
        watch.start(listener.changes.put, listener.states.put)
        assert listener.next_state() is None
        fake.close()
    lost = listener.next_state()
    assert lost is not None and ("lost the D-Bus system bus" in lost or "no D-Bus system bus" in lost)
    time.sleep(0.3)
    assert watcher_thread().is_alive()
    assert watch.stop(1.0)


def test_session_properties_map_to_console_and_user() -> None:
    local = FakeSession("3", "clerk").properties()
    assert session_info("/x/3", local).console is True
    remote = FakeSession("4", "clerk", seat="", remote=True).properties()
    assert session_info("/x/4", remote).console is False
    assert session_info("/org/freedesktop/login1/session/_35", {}).session == "_35"


def test_the_linux_platform_watches_logind_on_the_system_bus() -> None:
    watch = LinuxPlatform().screen_lock_watch()
    assert isinstance(watch, LogindLockWatch)
    assert watch._bus == "SYSTEM"
