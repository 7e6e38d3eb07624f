from __future__ import annotations

import dataclasses
import getpass
import hashlib
import logging
import os
import random
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from agent.sensors import procinfo
from agent.sensors.observations import ProcessInfo, ProcessStarted
from agent.sensors.pe_info import PeInfoReader, PeVersionInfo
from agent.sensors.pid_hint import LastPidHint
from agent.sensors.process import ProcessSensor
from agent.sensors.procinfo import is_parent_of

Spawn = Callable[..., subprocess.Popen[str]]


class Collector:
    """The sensor's consumer: remembers every event and when it arrived."""

    def __init__(self) -> None:
        self.events: dict[int, list[ProcessStarted]] = {}
        self.arrived: dict[int, float] = {}
        self._cond = threading.Condition()

    def __call__(self, event: ProcessStarted) -> None:
        with self._cond:
            self.events.setdefault(event.process.pid, []).append(event)
            self.arrived[event.process.pid] = time.monotonic()
            self._cond.notify_all()

    def wait_for(self, pid: int, exe: str | None = None, timeout: float = 1.0) -> ProcessStarted:
        """The latest event for ``pid`` (running ``exe`` when given), waiting up to ``timeout``."""

        def found() -> bool:
            events = self.events.get(pid, [])
            return bool(events) and (exe is None or events[-1].process.exe == exe)

        with self._cond:
            seen = self._cond.wait_for(found, timeout)
            assert seen, f"pid {pid} ({exe}) not seen in {timeout}s: {self.events.get(pid)}"
            return self.events[pid][-1]


@pytest.fixture
def running_sensor() -> Iterator[tuple[ProcessSensor, Collector]]:
    collector = Collector()
    sensor = ProcessSensor(collector)
    sensor.start()
    yield sensor, collector
    assert sensor.stop(timeout=5)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def always_list() -> LastPidHint:
    """For tests that fake the pid listing: list on every tick, whatever /proc/loadavg says."""
    return LastPidHint(platform_name="none")


TOOLS = [
    ("chromedriver", "chromedriver", ["--port=9515", "--allowed-ips="]),
    ("opt/ToDesk/ToDesk", "ToDesk", ["--hide"]),
    ("opt/AnyDesk/AnyDesk", "AnyDesk", ["--service"]),
    ("frp_0.58.1_linux_amd64/frpc", "frpc", ["-c", "./frpc.toml"]),
    ("venv/bin/mitmdump", "mitmdump", ["--listen-port", "8080", "--set", "block_global=false"]),
]


@pytest.mark.parametrize(("relative", "name", "args"), TOOLS, ids=[t[1] for t in TOOLS])
def test_tool_started_after_prime_is_reported_with_its_details(
    running_sensor: tuple[ProcessSensor, Collector],
    install_tool: Callable[[str], Path],
    spawn: Spawn,
    relative: str,
    name: str,
    args: list[str],
) -> None:
    _, collector = running_sensor
    tool = install_tool(relative)
    proc = spawn([str(tool), *args])
    event = collector.wait_for(proc.pid, exe=str(tool))
    assert [e.process.exe for e in collector.events[proc.pid]] == [str(tool)]  # no pre-exec copy
    me = psutil.Process()
    assert event.process.name == name
    assert event.process.exe == str(tool)
    assert event.process.cmdline == (str(tool), *args)
    assert event.process.command_line == " ".join([str(tool), *args])
    assert event.process.user == getpass.getuser()
    assert event.process.ppid == os.getpid()
    assert event.process.exe_sha256 == _sha256(tool)
    assert event.process.create_time == pytest.approx(psutil.Process(proc.pid).create_time())
    assert event.parent is not None
    assert (event.parent.pid, event.parent.name, event.parent.exe) == (os.getpid(), me.name(), me.exe())
    assert event.parent.cmdline == tuple(me.cmdline())
    assert abs(event.observed_at - time.time()) < 5


def test_python_scraper_is_reported_with_its_script_and_flags(
    running_sensor: tuple[ProcessSensor, Collector],
    python_script: Callable[[str], Path],
    python_exe: str,
    spawn: Spawn,
) -> None:
    _, collector = running_sensor
    script = python_script("scrape.py")
    proc = spawn([python_exe, "scrape.py", "--headless"], cwd=script.parent)
    event = collector.wait_for(proc.pid, exe=os.path.realpath(python_exe))
    assert event.process.cmdline == (python_exe, "scrape.py", "--headless")
    assert event.process.exe == os.path.realpath(python_exe)
    assert event.process.name.startswith("python")


def test_children_of_a_new_process_carry_it_as_parent(
    running_sensor: tuple[ProcessSensor, Collector], install_tool: Callable[[str], Path], spawn: Spawn
) -> None:
    _, collector = running_sensor
    driver = install_tool("chromedriver")
    browser = install_tool("opt/google/chrome/chrome")
    launcher = f'"{browser}" --headless --remote-debugging-port=0 & wait'
    shell = spawn(["/bin/sh", "-c", launcher])
    parent_event = collector.wait_for(shell.pid, exe=os.path.realpath("/bin/sh"))
    child_pid = _wait_child(shell.pid)
    child_event = collector.wait_for(child_pid, exe=str(browser))
    assert child_event.process.exe == str(browser)
    assert child_event.parent is not None
    assert child_event.parent.pid == shell.pid
    assert child_event.parent.cmdline == parent_event.process.cmdline
    assert driver.exists()


def _wait_child(pid: int, timeout: float = 2.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = psutil.Process(pid).children()
        if children:
            return children[0].pid
        time.sleep(0.01)
    raise AssertionError(f"pid {pid} started no child")


def test_detection_latency_with_the_default_interval(
    running_sensor: tuple[ProcessSensor, Collector], install_tool: Callable[[str], Path], spawn: Spawn
) -> None:
    _, collector = running_sensor
    tool = install_tool("chromedriver")
    latencies = []
    for _ in range(40):
        before = time.monotonic()
        proc = spawn([str(tool), "--port=9515"])
        collector.wait_for(proc.pid, exe=str(tool), timeout=2.0)
        latencies.append(collector.arrived[proc.pid] - before)
        proc.kill()
        proc.wait()
        time.sleep(random.uniform(0.0, 0.1))  # start at every phase of the 100 ms tick
    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[int(0.95 * len(latencies)) - 1]
    print(f"\nprocess sensor latency over {len(latencies)} starts: p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms")
    # The target is 250 ms; this bound is generous for a loaded 2-core CI machine.
    assert p95 < 1.0


def test_processes_running_before_prime_are_not_reported(
    install_tool: Callable[[str], Path], spawn: Spawn
) -> None:
    old = spawn([str(install_tool("AnyDesk")), "--service"])
    collector = Collector()
    sensor = ProcessSensor(collector)
    sensor.prime()
    sensor.poll()
    new = spawn([str(install_tool("ToDesk")), "--hide"])
    # Other programs on this shared machine may start too; ours must be exactly as expected.
    reported = [e.process.pid for e in sensor.poll()]
    assert reported.count(new.pid) == 1
    assert new.pid not in [e.process.pid for e in sensor.poll()]
    assert old.pid not in collector.events


def test_a_tick_reads_no_process_that_is_already_known(
    install_tool: Callable[[str], Path], spawn: Spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[int] = []
    real_read, real_image = procinfo.read_raw, procinfo.read_image

    def counting_read(proc: psutil.Process) -> dict[str, object]:
        reads.append(proc.pid)
        return real_read(proc)

    def counting_image(proc: psutil.Process) -> procinfo.Image | None:
        reads.append(proc.pid)
        return real_image(proc)

    monkeypatch.setattr(procinfo, "read_raw", counting_read)
    monkeypatch.setattr("agent.sensors.process.read_image", counting_image)
    sensor = ProcessSensor(lambda _e: None, exec_window_s=0.2, pid_hint=always_list())
    sensor.prime()
    primed = set(psutil.pids())
    for _ in range(5):
        sensor.poll()
    # Other programs on this machine may start meanwhile and are read; nothing that ran at prime is.
    assert primed.isdisjoint(reads)
    proc = spawn([str(install_tool("frpc")), "-c", "frpc.toml"])
    sensor.poll()
    assert proc.pid in reads
    time.sleep(0.25)  # past the exec window: the process is no longer young
    sensor.poll()
    reads.clear()
    for _ in range(5):
        sensor.poll()
    assert proc.pid not in reads
    assert primed.isdisjoint(reads)


def test_exec_after_start_is_reported_as_the_new_program(
    running_sensor: tuple[ProcessSensor, Collector], install_tool: Callable[[str], Path], spawn: Spawn
) -> None:
    sensor, collector = running_sensor
    driver = install_tool("chromedriver")
    # The shell runs first, then replaces itself (same pid) with the driver.
    shell = spawn(["/bin/sh", "-c", 'sleep 0.3; exec "$0" --port=9515', str(driver)])
    first = collector.wait_for(shell.pid, exe=os.path.realpath("/bin/sh"))
    assert first.process.cmdline[:2] == ("/bin/sh", "-c")
    event = collector.wait_for(shell.pid, exe=str(driver))
    assert event.process.cmdline == (str(driver), "--port=9515")
    assert event.process.create_time == first.process.create_time
    assert event.parent is not None and event.parent.pid == os.getpid()
    time.sleep(1.2)  # past the exec window: one exec is one re-report, not one per tick
    # (sensor.execs counts every process on the machine: only this pid's reports say anything)
    assert [e.process.exe for e in collector.events[shell.pid]] == [os.path.realpath("/bin/sh"), str(driver)]
    assert sensor.execs >= 1


FORK_THEN_EXEC = """
import os, sys, time
pid = os.fork()
if pid == 0:
    time.sleep(float(sys.argv[2]))
    if sys.argv[1] != "-":
        os.execv(sys.argv[1], [sys.argv[1], "--port=9515"])
    time.sleep(60)
    os._exit(0)
print(pid, flush=True)
time.sleep(60)
"""


def test_copy_of_the_parent_before_exec_is_not_reported(
    running_sensor: tuple[ProcessSensor, Collector], install_tool: Callable[[str], Path], spawn: Spawn,
    python_exe: str,
) -> None:
    _, collector = running_sensor
    driver = install_tool("chromedriver")
    parent = spawn([python_exe, "-c", FORK_THEN_EXEC, str(driver), "0.15"])
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    collector.wait_for(child, exe=str(driver))
    assert [e.process.exe for e in collector.events[child]] == [str(driver)]


def test_forked_worker_that_never_execs_is_reported_once_after_the_grace(
    running_sensor: tuple[ProcessSensor, Collector], spawn: Spawn, python_exe: str
) -> None:
    _, collector = running_sensor
    parent = spawn([python_exe, "-c", FORK_THEN_EXEC, "-", "0"])
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    event = collector.wait_for(child, timeout=2.0)
    assert event.process.cmdline == collector.wait_for(parent.pid).process.cmdline
    assert event.parent is not None and event.parent.pid == parent.pid
    time.sleep(1.2)  # past the exec window: still one report
    assert len(collector.events[child]) == 1


def test_processes_that_exit_at_once_do_not_break_the_sensor(
    running_sensor: tuple[ProcessSensor, Collector],
    install_tool: Callable[[str], Path],
    spawn: Spawn,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sensor, collector = running_sensor
    caplog.set_level(logging.WARNING)
    for _ in range(40):
        subprocess.run(["/bin/true"], check=True)
    quick = [subprocess.Popen(["/bin/sh", "-c", "exit 0"]) for _ in range(20)]
    for proc in quick:
        proc.wait()
    driver = install_tool("chromedriver")
    survivor = spawn([str(driver), "--port=9515"])
    collector.wait_for(survivor.pid, exe=str(driver))
    assert sensor.is_alive()
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_zombie_process_is_reported_without_its_executable(
    install_tool: Callable[[str], Path],
) -> None:
    sensor = ProcessSensor(lambda _e: None)
    sensor.prime()
    quitter = install_tool("ngrok")
    quitter.write_bytes(Path("/bin/true").read_bytes())
    zombie = subprocess.Popen([str(quitter), "tcp", "3389"])
    try:
        deadline = time.monotonic() + 5
        while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the child never became a zombie"
            time.sleep(0.01)
        events = {e.process.pid: e for e in sensor.poll()}
        assert events[zombie.pid].process.name == "ngrok"
        assert events[zombie.pid].process.cmdline == ()  # a zombie has no command line left
    finally:
        zombie.wait()


def test_access_denied_fields_become_none_and_others_stay(
    install_tool: Callable[[str], Path], spawn: Spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As root this machine never refuses; Windows does for protected processes. Refuse two fields
    # of one real process the way psutil does there.
    proc = spawn([str(install_tool("opt/Sunlogin/SunloginClient")), "--mod=service"])
    for method in ("exe", "cmdline"):
        real = getattr(psutil.Process, method)

        def refusing(self: psutil.Process, _real: Callable[..., object] = real) -> object:
            if self.pid == proc.pid:
                raise psutil.AccessDenied(self.pid)
            return _real(self)

        monkeypatch.setattr(psutil.Process, method, refusing)
    sensor = ProcessSensor(lambda _e: None, pid_hint=always_list())
    sensor.prime()
    other = spawn([str(install_tool("AnyDesk")), "--service"])
    monkeypatch.setattr(psutil, "pids", lambda real=psutil.pids: sorted({*real(), proc.pid}))
    sensor._known.pop(proc.pid, None)  # as if it had just started
    events = {e.process.pid: e for e in sensor.poll()}
    denied = events[proc.pid].process
    assert (denied.name, denied.exe, denied.cmdline, denied.exe_sha256) == ("SunloginClient", None, (), None)
    assert denied.user == getpass.getuser()
    assert events[other.pid].process.exe is not None


def test_pid_listed_but_gone_is_counted_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = subprocess.Popen(["/bin/true"])
    dead.wait()
    sensor = ProcessSensor(lambda _e: None, pid_hint=always_list())
    sensor.prime()
    monkeypatch.setattr(psutil, "pids", lambda real=psutil.pids: [*real(), dead.pid])
    assert [e for e in sensor.poll() if e.process.pid == dead.pid] == []
    assert sensor.vanished >= 1


def test_a_failing_consumer_does_not_lose_the_other_events(
    install_tool: Callable[[str], Path], spawn: Spawn, caplog: pytest.LogCaptureFixture
) -> None:
    delivered: list[int] = []

    def flaky(event: ProcessStarted) -> None:
        if not delivered and event.process.name == "ToDesk":
            delivered.append(-1)
            raise RuntimeError("spool full")
        delivered.append(event.process.pid)

    sensor = ProcessSensor(flaky)
    sensor.prime()
    first = spawn([str(install_tool("ToDesk")), "--hide"])
    second = spawn([str(install_tool("AnyDesk")), "--service"])
    events = sensor.poll()
    assert {first.pid, second.pid} <= {e.process.pid for e in events}
    assert second.pid in delivered
    assert "consumer failed" in caplog.text


def test_snapshot_lists_running_processes_with_parents(
    install_tool: Callable[[str], Path], spawn: Spawn
) -> None:
    tool = install_tool("x11vnc")
    proc = spawn([str(tool), "-forever", "-shared"])
    sensor = ProcessSensor(lambda _e: pytest.fail("snapshot must not emit"), hash_exe=True)
    by_pid = {e.process.pid: e for e in sensor.snapshot()}
    assert by_pid[proc.pid].process.cmdline == (str(tool), "-forever", "-shared")
    assert by_pid[proc.pid].process.exe_sha256 == _sha256(tool)
    parent = by_pid[proc.pid].parent
    assert parent is not None and parent.pid == os.getpid()
    assert os.getpid() in by_pid


def test_hashing_can_be_turned_off(install_tool: Callable[[str], Path], spawn: Spawn) -> None:
    sensor = ProcessSensor(lambda _e: None, hash_exe=False)
    sensor.prime()
    proc = spawn([str(install_tool("frpc")), "-c", "frpc.toml"])
    (event,) = [e for e in sensor.poll() if e.process.pid == proc.pid]
    assert event.process.exe_sha256 is None


@pytest.fixture
def twin(install_tool: Callable[[str], Path], pe_file: Callable[..., Path]) -> tuple[Path, PeInfoReader]:
    """A tool that runs here and a reader that answers for it with an AutoHotkey PE file's version
    info (Linux cannot run a PE file, so the reader is pointed at a PE twin of the running program)."""
    tool = install_tool("notepad.exe")
    pe = pe_file("twin/AutoHotkey.exe", {"OriginalFilename": "AutoHotkey.exe", "CompanyName": "AutoHotkey"})

    class TwinReader(PeInfoReader):
        def read(self, path: str | None) -> PeVersionInfo | None:
            return super().read(str(pe) if path == str(tool) else path)

    return tool, TwinReader(platform_name="win32")


def test_pe_version_info_is_attached_when_asked_on_windows(twin: tuple[Path, PeInfoReader], spawn: Spawn) -> None:
    tool, reader = twin
    sensor = ProcessSensor(lambda _e: None, want_pe_info=True, pe_reader=reader)
    sensor.prime()
    proc = spawn([str(tool), "macro.ahk"])
    (event,) = [e for e in sensor.poll() if e.process.pid == proc.pid]
    assert (event.process.original_file_name, event.process.company) == ("AutoHotkey.exe", "AutoHotkey")
    assert event.process.exe_sha256 == _sha256(tool)


def test_pe_info_is_not_read_unless_asked(install_tool: Callable[[str], Path], spawn: Spawn) -> None:
    sensor = ProcessSensor(lambda _e: None, platform_name="win32")
    sensor.prime()
    proc = spawn([str(install_tool("AutoHotkey.exe"))])
    (event,) = [e for e in sensor.poll() if e.process.pid == proc.pid]
    assert event.process.original_file_name is None


def test_rules_that_read_version_info_switch_it_on_and_rules_that_do_not_switch_it_off(
    twin: tuple[Path, PeInfoReader], spawn: Spawn
) -> None:
    from agent.detection.pipeline import Detection
    from agent.policy import CurrentPolicy
    from agent.rules import RuleSet
    from agent.rules.engine import builtin_texts

    tool, reader = twin
    sensor = ProcessSensor(lambda _e: None, pe_reader=reader)
    with_pe = RuleSet.from_texts(builtin_texts())[0]
    without_pe = RuleSet.from_texts([t for t in builtin_texts() if "\\chromedriver" in t[1]
                                     and "OriginalFileName" not in t[1]])[0]
    assert with_pe.needs_pe_info and len(without_pe) and not without_pe.needs_pe_info
    loaded = iter([with_pe, without_pe])
    detection = Detection(policy=CurrentPolicy(None), load_rules=lambda _texts: next(loaded), respond=print)
    detection.on_rules(lambda rules: sensor.set_pe_info(rules.needs_pe_info))

    def company_of_new_tool() -> str | None:
        sensor.prime()
        proc = spawn([str(tool), "macro.ahk"])
        (event,) = [e for e in sensor.poll() if e.process.pid == proc.pid]
        return event.process.company

    assert company_of_new_tool() is None
    detection.rules()
    assert company_of_new_tool() == "AutoHotkey"
    detection._rules_for = None  # as if policy brought other rules
    detection.rules()
    assert company_of_new_tool() is None


def test_worker_thread_is_named_daemon_and_stops() -> None:
    sensor = ProcessSensor(lambda _e: None, interval_s=0.05)
    sensor.start()
    threads = [t for t in threading.enumerate() if t.name == sensor.name]
    assert sensor.name == "tg-sensor-process"
    assert len(threads) == 1 and threads[0].daemon
    with pytest.raises(RuntimeError, match="already running"):
        sensor.start()
    assert sensor.stop(timeout=2)
    assert not sensor.is_alive()


def test_a_failing_tick_is_logged_and_the_loop_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Every tick lists pids: on a quiet machine the pid hint would skip most of them.
    sensor = ProcessSensor(lambda _e: None, interval_s=0.02, pid_hint=always_list())
    sensor.prime()
    calls = {"n": 0}
    real = psutil.pids

    def sometimes_failing() -> list[int]:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise OSError("transient /proc failure")
        return real()

    monkeypatch.setattr(psutil, "pids", sometimes_failing)
    sensor.start()
    deadline = time.monotonic() + 3
    while calls["n"] < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sensor.stop()
    assert calls["n"] >= 6
    assert caplog.text.count("tick failed") == 2


def test_reused_parent_pid_is_not_taken_as_parent() -> None:
    child = ProcessInfo(pid=200, name="chrome", ppid=100, create_time=1000.0)
    assert is_parent_of(ProcessInfo(pid=100, name="explorer", create_time=990.0), child)
    assert is_parent_of(ProcessInfo(pid=100, name="explorer", create_time=1000.005), child)
    assert not is_parent_of(ProcessInfo(pid=100, name="svchost", create_time=1005.0), child)
    assert is_parent_of(ProcessInfo(pid=100, name="unknown"), child)


def test_a_program_read_mid_exec_with_an_empty_command_line_is_reported_once_when_readable(
    install_tool: Callable[[str], Path], spawn: Spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # /proc/PID/cmdline reads empty while the kernel swaps a process's memory in exec; reported then,
    # the same program came again a tick later with its command line (two findings for one start).
    import agent.sensors.process as process_module

    sensor = ProcessSensor(lambda _e: None, hash_exe=False)
    sensor.prime()
    proc = spawn([str(install_tool("chromedriver")), "--port=9515"])
    real_open = process_module.open_info

    def open_mid_exec(pid: int):  # type: ignore[no-untyped-def]
        opened = real_open(pid)
        if opened is None or pid != proc.pid:
            return opened
        handle, info = opened
        return handle, dataclasses.replace(info, cmdline=())

    monkeypatch.setattr(process_module, "open_info", open_mid_exec)
    assert [e for e in sensor.poll() if e.process.pid == proc.pid] == []  # held, not reported empty
    monkeypatch.setattr(process_module, "open_info", real_open)
    reports = [e for e in sensor.poll() if e.process.pid == proc.pid]
    reports += [e for e in sensor.poll() if e.process.pid == proc.pid]
    assert [e.process.cmdline[1:] for e in reports] == [("--port=9515",)]
