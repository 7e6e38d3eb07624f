from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psutil
import pytest

from agent.sensors.pid_hint import LastPidHint
from agent.sensors.process import ProcessSensor


def test_real_loadavg_moves_when_a_process_is_forked() -> None:
    hint = LastPidHint()
    assert hint.enabled
    hint.changed()
    subprocess.run(["/bin/true"], check=True)
    assert hint.changed()


def test_unchanged_last_pid_means_no_listing_needed(tmp_path: Path) -> None:
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("0.10 0.20 0.30 1/300 4242\n")
    hint = LastPidHint(str(loadavg))
    assert hint.changed()  # nothing known yet
    assert not hint.changed()
    loadavg.write_text("0.10 0.20 0.30 2/301 4243\n")
    assert hint.changed()
    assert not hint.changed()
    hint.close()


def test_unreadable_hint_disables_itself_and_always_says_maybe(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hint = LastPidHint(str(tmp_path / "missing"))
    assert hint.changed() and hint.changed()
    assert not hint.enabled
    assert len([r for r in caplog.records if r.name == "agent.sensors.pid_hint"]) == 1
    empty = tmp_path / "empty"
    empty.write_text("")
    assert LastPidHint(str(empty)).changed()


def test_other_platforms_always_list() -> None:
    hint = LastPidHint(platform_name="win32")
    assert not hint.enabled
    assert hint.changed() and hint.changed()


class StillHint(LastPidHint):
    """As if nothing on the machine had forked since the last look."""

    def changed(self) -> bool:
        return False


def test_sensor_skips_the_listing_while_no_pid_was_allocated(monkeypatch: pytest.MonkeyPatch) -> None:
    listings: list[int] = []
    real = psutil.pids

    def counting() -> list[int]:
        listings.append(1)
        return real()

    monkeypatch.setattr(psutil, "pids", counting)
    sensor = ProcessSensor(lambda _e: None, pid_hint=StillHint(), full_listing_s=0.3)
    sensor.prime()
    listings.clear()
    for _ in range(5):
        sensor.poll()
    assert listings == []
    time.sleep(0.35)
    sensor.poll()  # the periodic full listing still runs, to forget exited processes
    assert listings == [1]
