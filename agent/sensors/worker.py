"""Named, stoppable threads that run a sensor's tick (STYLE.md #5): at a fixed cadence
(``PollingWorker``) or when the OS reports activity (``EventWorker``)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class PollingWorker:
    """Calls ``tick`` every ``interval_s`` on a daemon thread until stopped.

    The cadence is kept against a monotonic schedule, so a slow tick shortens the next wait
    instead of drifting; a tick that overruns several periods is not replayed in a burst.
    An exception in a tick is logged with its traceback and the loop goes on.
    """

    def __init__(self, name: str, interval_s: float, tick: Callable[[], object]) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s: expected a positive number of seconds, got {interval_s}")
        self._name = name
        self._interval = interval_s
        self._tick = tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0
        self.ticks = 0

    @property
    def name(self) -> str:
        return self._name

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.is_alive():
            raise RuntimeError(f"{self._name}: already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> bool:
        """Ask the loop to end and wait up to ``timeout``; True when the thread has ended."""
        self._stop.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception:
                self.errors += 1
                log.exception("%s: tick failed; continuing", self._name)
            self.ticks += 1
            next_at += self._interval
            delay = next_at - time.monotonic()
            if delay < 0:
                next_at = time.monotonic()
                delay = 0.0
            if self._stop.wait(delay):
                break


class Wakeup(Protocol):
    def wait(self, timeout: float) -> None:
        """Return early when there is something to do or after ``wake()``; else after ``timeout``."""
        ...

    def wake(self) -> None: ...


class EventWorker:
    """Calls ``tick`` when ``wakeup`` reports activity, at most once per ``min_gap_s``, and at the
    latest after ``next_wait()`` seconds (the sensor's own deadlines), on a daemon thread.

    Idle, the thread sleeps in ``wakeup.wait`` and costs nothing; the minimum gap bounds the
    tick rate under a storm of activity. Each tick waits ``settle_s`` after waking, so related
    activity (a fork and the exec right after it) is seen by one tick, in its finished state.
    """

    def __init__(self, name: str, tick: Callable[[], object], *, wakeup: Wakeup, min_gap_s: float,
                 next_wait: Callable[[], float], settle_s: float = 0.0) -> None:
        self._name = name
        self._tick = tick
        self._wakeup = wakeup
        self._min_gap = min_gap_s
        self._settle = settle_s
        self._next_wait = next_wait
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0
        self.ticks = 0

    @property
    def name(self) -> str:
        return self._name

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.is_alive():
            raise RuntimeError(f"{self._name}: already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> bool:
        self._stop.set()
        self._wakeup.wake()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _run(self) -> None:
        last = -self._min_gap
        while not self._stop.is_set():
            self._wakeup.wait(max(0.0, self._next_wait()))
            delay = max(self._settle, last + self._min_gap - time.monotonic())
            if self._stop.is_set() or (delay > 0 and self._stop.wait(delay)):
                break
            last = time.monotonic()
            try:
                self._tick()
            except Exception:
                self.errors += 1
                log.exception("%s: tick failed; continuing", self._name)
            self.ticks += 1
