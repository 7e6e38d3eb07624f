"""The export sensor with real watchdog observers (inotify and forced polling) on temp folders."""

from __future__ import annotations

import queue
import subprocess
import sys
import time
from pathlib import Path

import pytest
from exports_fakedata import Generator, write_csv

from agent.exports.sensor import ExportSensor
from agent.exports.volumes import FakeVolumes
from agent.sensors.observations import FileWritten


def wait_for(out: queue.Queue[FileWritten], name: str, timeout: float) -> FileWritten:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            observation = out.get(timeout=0.1)
        except queue.Empty:
            continue
        if Path(observation.path).name == name:
            return observation
    raise AssertionError(f"no FileWritten for {name} within {timeout} s")


@pytest.mark.parametrize("force_polling", [False, True], ids=["native", "polling"])
def test_csv_written_into_a_watched_folder_is_seen(force_polling: bool, tmp_path: Path) -> None:
    watched = tmp_path / "Downloads"
    watched.mkdir()
    out: queue.Queue[FileWritten] = queue.Queue()
    sensor = ExportSensor([watched, tmp_path / "missing"], out, volumes=FakeVolumes(), settle_s=0.5,
                          force_polling=force_polling, polling_interval_s=0.3)
    sensor.start()
    try:
        assert sensor.mode == ("polling" if force_polling else "native")
        assert sensor.watched == [str(watched)]
        time.sleep(0.5)  # the polling observer takes its first snapshot
        path = write_csv(watched / "导出.csv", list(Generator().waybill_rows(200)))
        (watched / "half.csv.crdownload").write_text("partial download")
        started = time.monotonic()
        observation = wait_for(out, "导出.csv", timeout=5.0)
        assert observation.size == path.stat().st_size
        assert observation.removable is False
        assert time.monotonic() - started < 5.0
    finally:
        sensor.stop()
    assert not any(Path(item.path).name.endswith(".crdownload") for item in list(out.queue))


def test_removable_drive_is_watched_once_mounted_and_marked(tmp_path: Path) -> None:
    stick = tmp_path / "USB"
    volumes = FakeVolumes()
    out: queue.Queue[FileWritten] = queue.Queue()
    sensor = ExportSensor([], out, volumes=volumes, settle_s=0.3, volume_poll_s=0.3)
    sensor.start()
    try:
        assert sensor.watched == []
        stick.mkdir()
        volumes.mounts.append(stick)  # plugged in
        deadline = time.monotonic() + 3.0
        while sensor.watched != [str(stick)] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sensor.watched == [str(stick)]
        (stick / "sub").mkdir()
        write_csv(stick / "sub" / "客户.csv", list(Generator().waybill_rows(20)))
        observation = wait_for(out, "客户.csv", timeout=5.0)
        assert observation.removable is True
        volumes.mounts.clear()  # unplugged
        deadline = time.monotonic() + 3.0
        while sensor.watched and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sensor.watched == []
    finally:
        sensor.stop()


def test_full_output_queue_drops_and_counts(tmp_path: Path) -> None:
    out: queue.Queue[FileWritten] = queue.Queue(maxsize=1)
    sensor = ExportSensor([tmp_path], out, volumes=FakeVolumes(), settle_s=0.2)
    sensor.start()
    try:
        for index in range(3):
            (tmp_path / f"{index}.csv").write_text("a,b\n")
        deadline = time.monotonic() + 5.0
        while sensor.drops["out_queue_full"] < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        sensor.stop()
    assert out.qsize() == 1
    assert sensor.drops["out_queue_full"] == 2


class CountingVolumes(FakeVolumes):
    def __init__(self) -> None:
        super().__init__()
        self.asked = 0

    def removable_mounts(self) -> list[Path]:
        self.asked += 1
        return super().removable_mounts()


def test_idle_sensor_sleeps_until_its_volume_check_and_stops_at_once(tmp_path: Path) -> None:
    volumes = CountingVolumes()
    sensor = ExportSensor([tmp_path], queue.Queue(), volumes=volumes, volume_poll_s=30.0)
    sensor.start()
    time.sleep(1.0)
    asked_idle = volumes.asked
    started = time.monotonic()
    sensor.stop(timeout=5.0)
    assert time.monotonic() - started < 1.0  # woken, not waiting out its 30 s
    assert asked_idle == 2  # start and the first tick; nothing while idle


def test_idle_watching_loads_no_polling_observer_scanner_or_openpyxl(tmp_path: Path) -> None:
    # Idle memory: these are imported only when a folder must be polled or a file is scanned.
    code = (
        "import queue, sys\n"
        "from pathlib import Path\n"
        "from agent.detection.exports_worker import ExportScanner\n"
        "from agent.exports.sensor import ExportSensor\n"
        "from agent.exports.volumes import FakeVolumes\n"
        f"sensor = ExportSensor([Path({str(tmp_path)!r})], queue.Queue(), volumes=FakeVolumes())\n"
        "sensor.start()\n"
        "mode = sensor.mode\n"
        "sensor.stop()\n"
        "loaded = [m in sys.modules for m in ('watchdog.observers.polling', 'agent.exports.scan', 'openpyxl')]\n"
        "print(mode, *loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["native", "False", "False", "False"]
