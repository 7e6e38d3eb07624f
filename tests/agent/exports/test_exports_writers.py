"""Which process writes an export: real processes on Linux (/proc), the Restart Manager's answers
on Windows (a fake of rstrtmgr.dll shaped as Windows answers), and the sensor carrying the writer.
"""

from __future__ import annotations

import ctypes
import http.server
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from exports_fakedata import Generator, write_csv

from agent.exports.sensor import ExportSensor
from agent.exports.volumes import FakeVolumes
from agent.exports.writers import ERROR_MORE_DATA, FakeWriters, LinuxWriters, RmProcessInfo, WindowsWriters
from agent.sensors.observations import FileWritten, ProcessInfo

HOLD = "import sys; f = open(sys.argv[1], sys.argv[2]); print('open', flush=True); sys.stdin.readline()"


def _holding(path: Path, mode: str) -> subprocess.Popen[str]:
    """A real process with `path` open in `mode` until its stdin is closed."""
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(path), mode], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "open\n"
    return child


def _release(child: subprocess.Popen[str]) -> None:
    assert child.stdin is not None
    child.stdin.close()
    child.wait(timeout=10)


def test_linux_names_the_process_writing_a_file_and_not_one_reading_it(tmp_path: Path) -> None:
    written, read = tmp_path / "导出.csv", tmp_path / "read.csv"
    read.write_text("x")
    writer, reader = _holding(written, "w"), _holding(read, "r")
    try:
        found = LinuxWriters().writers({str(written), str(read), str(tmp_path / "nobody.csv")})
        assert set(found) == {str(written)}
        info = found[str(written)]
        assert info.pid == writer.pid and info.name.startswith("python")
        assert info.cmdline[-2:] == (str(written), "w") and info.create_time
    finally:
        _release(writer)
        _release(reader)
    assert LinuxWriters().writers({str(written)}) == {}  # closed: nobody writes it any more


def test_linux_leaves_its_own_process_out(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    with path.open("w"):
        assert LinuxWriters().writers({str(path)}) == {}
        assert LinuxWriters(own_pid=-1).writers({str(path)})[str(path)].pid == os.getpid()


class _SlowExport(http.server.BaseHTTPRequestHandler):
    """Serves a generated export in pieces, as a busy waybill system would, so the download lasts."""

    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        step = len(self.body) // 6 + 1
        for start in range(0, len(self.body), step):
            self.wfile.write(self.body[start:start + step])
            self.wfile.flush()
            time.sleep(0.3)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def export_server(tmp_path: Path) -> Iterator[str]:
    source = write_csv(tmp_path / "source.csv", list(Generator(seed=3).waybill_rows(300)))
    _SlowExport.body = source.read_bytes()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowExport)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/export.csv"
    finally:
        server.shutdown()
        server.server_close()


def test_an_export_downloaded_by_wget_is_observed_with_wget_as_its_writer(tmp_path: Path,
                                                                          export_server: str) -> None:
    wget = shutil.which("wget")
    assert wget, "wget is installed by scripts/install-system-deps.sh"
    watched = tmp_path / "Downloads"
    watched.mkdir()
    out: queue.Queue[FileWritten] = queue.Queue()
    sensor = ExportSensor([watched], out, volumes=FakeVolumes(), settle_s=0.5, writers=LinuxWriters())
    sensor.start()
    try:
        download = subprocess.run([wget, "-q", "-O", str(watched / "客户导出.csv"), export_server], timeout=60)
        assert download.returncode == 0
        observation = out.get(timeout=10)
    finally:
        sensor.stop()
    assert Path(observation.path).name == "客户导出.csv"
    assert observation.process is not None
    assert (observation.process.name, observation.process.exe) == ("wget", os.path.realpath(wget))
    assert observation.process.cmdline[-1] == export_server


def test_the_sensor_asks_once_per_tick_for_every_file_being_written(tmp_path: Path) -> None:
    tool = ProcessInfo(pid=4321, name="导出助手.exe")
    names = [f"part{index}.csv" for index in range(5)]
    writers = FakeWriters({str(tmp_path / names[0]): tool})
    out: queue.Queue[FileWritten] = queue.Queue()
    sensor = ExportSensor([tmp_path], out, volumes=FakeVolumes(), settle_s=0.3, writers=writers)
    sensor.start()
    try:
        for name in names:
            (tmp_path / name).write_text("x")
        seen = {Path(item.path).name: item for item in (out.get(timeout=5) for _ in names)}
    finally:
        sensor.stop()
    assert seen[names[0]].process == tool
    assert all(seen[name].process is None for name in names[1:])
    assert set().union(*writers.asked) == {str(tmp_path / name) for name in names}
    assert len(writers.asked) < len(names)  # files written in one burst are asked about together


class _FakeRestartManager:
    """rstrtmgr.dll as Windows answers: sessions, registered files, holders per file."""

    def __init__(self, holders: dict[str, list[int]]) -> None:
        self.holders = holders
        self.open_sessions: set[int] = set()
        self.registered: dict[int, str] = {}
        self.list_calls = 0
        self._next = 1

    def RmStartSession(self, session: Any, flags: int, key: Any) -> int:
        session._obj.value = self._next
        self.open_sessions.add(self._next)
        self._next += 1
        return 0

    def RmRegisterResources(self, session: int, count: int, files: Any, *rest: Any) -> int:
        if files[0] not in self.holders:
            return 2  # ERROR_FILE_NOT_FOUND
        self.registered[session] = files[0]
        return 0

    def RmGetList(self, session: int, needed: Any, count: Any, infos: Any, reasons: Any) -> int:
        self.list_calls += 1
        pids = self.holders[self.registered[session]]
        needed._obj.value = len(pids)
        if count._obj.value < len(pids):
            return ERROR_MORE_DATA
        for index, pid in enumerate(pids):
            infos[index].Process.dwProcessId = pid
            infos[index].strAppName = f"app{pid}"
        count._obj.value = len(pids)
        return 0

    def RmEndSession(self, session: int) -> int:
        self.open_sessions.discard(session)
        return 0


def test_windows_asks_the_restart_manager_and_ends_every_session() -> None:
    many = list(range(1000, 1020))  # more holders than the first array has room for
    api = _FakeRestartManager({"C:\\Users\\clerk\\Downloads\\a.csv": [77, 4242],
                               "C:\\Users\\clerk\\Desktop\\b.xlsx": many})
    described = {4242: ProcessInfo(pid=4242, name="scraper.exe"), 1019: ProcessInfo(pid=1019, name="EXCEL.EXE")}
    windows = WindowsWriters(api, own_pid=77, describe_pid=described.get)
    found = windows.writers({"C:\\Users\\clerk\\Downloads\\a.csv", "C:\\Users\\clerk\\Desktop\\b.xlsx",
                             "C:\\gone.csv"})
    assert found == {"C:\\Users\\clerk\\Downloads\\a.csv": described[4242],
                     "C:\\Users\\clerk\\Desktop\\b.xlsx": described[1019]}
    assert api.open_sessions == set()  # also the one whose file could not be registered
    assert api.list_calls == 3  # b.xlsx was asked twice: the first array was too small
    # RM_PROCESS_INFO: 668 bytes on Windows, where a WCHAR is 2 bytes (4 here).
    assert ctypes.sizeof(RmProcessInfo) == 12 + (256 + 64) * ctypes.sizeof(ctypes.c_wchar) + 16
