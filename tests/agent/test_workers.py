"""Named worker threads: restart after a crash, and a prompt stop even when the target blocks."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time

import pytest

from agent.workers import Worker, limit_malloc_arenas


def test_a_target_blocked_on_its_queue_stops_at_once_when_woken() -> None:
    inbox: queue.Queue[str | None] = queue.Queue()
    handled: list[str] = []

    def run(stop: threading.Event) -> None:
        while not stop.is_set():
            item = inbox.get()  # no timeout: an idle worker never wakes up on its own
            if item is not None:
                handled.append(item)

    worker = Worker("blocking", run, wake=lambda: inbox.put(None))
    worker.start()
    inbox.put("file.csv")
    time.sleep(0.1)
    started = time.monotonic()
    assert worker.stop(2.0)
    assert time.monotonic() - started < 0.5
    assert handled == ["file.csv"]


def test_a_crashing_target_is_logged_and_run_again(caplog: pytest.LogCaptureFixture) -> None:
    runs: list[int] = []

    def run(stop: threading.Event) -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("first run fails")
        stop.wait()

    worker = Worker("flaky", run, restart_delay_s=0.05)
    worker.start()
    deadline = time.monotonic() + 2
    while len(runs) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.stop(2.0)
    assert len(runs) == 2 and worker.crashes == 1
    assert "worker flaky failed" in caplog.text


ARENAS_PROBE = """
import ctypes, sys, threading
from agent.workers import limit_malloc_arenas
if sys.argv[1] == "limited":
    assert limit_malloc_arenas(1)
barrier = threading.Barrier(8)
def work():
    barrier.wait()  # all at once, so glibc would hand out arenas of their own
    kept = [bytearray(4000) for _ in range(200)]  # above pymalloc's limit: malloc itself
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
ctypes.CDLL(None).malloc_stats()  # one "Arena N:" block per arena, on stderr
"""


def _arenas(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", ARENAS_PROBE, mode], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stderr.count("Arena ")


def test_malloc_arenas_are_capped_for_all_threads() -> None:
    assert _arenas("limited") == 1
    assert _arenas("default") > 1  # what the cap saves: one arena per busy thread


def test_arena_cap_is_linux_only() -> None:
    assert limit_malloc_arenas(1, platform_name="win32") is False
