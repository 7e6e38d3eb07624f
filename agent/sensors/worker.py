"""A named, stoppable thread that runs one sensor tick at a fixed cadence (STYLE.md #5)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

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
