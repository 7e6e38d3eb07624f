"""Named, stoppable threads whose loop survives its own exceptions (STYLE.md #5), and the
per-thread memory cost of having a dozen of them."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

RESTART_DELAY_S = 5.0
M_ARENA_MAX = -8  # glibc malloc.h


def limit_malloc_arenas(limit: int = 1, *, platform_name: str | None = None) -> bool:
    """Cap glibc's malloc arenas; True when the cap was set.

    glibc gives each new thread its own arena (up to 8 per core), and freed memory stays in
    the arena of the thread that used it: with a dozen mostly idle threads that is a few MB
    of RSS that is never reused. Under the GIL threads rarely malloc at the same time, so one
    shared arena costs no measurable contention here (bench/bench_agent_idle.py: about 2.5 MB
    less RSS). Threads that already have an arena keep it, so call this before starting them.
    """
    if not (platform_name or sys.platform).startswith("linux"):
        return False
    import ctypes  # late: only here, and watchdog's inotify observer loads it on Linux anyway

    try:
        mallopt = ctypes.CDLL(None).mallopt  # the libc this process runs on
    except (OSError, AttributeError):  # not glibc (musl has no arenas to cap)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, limit))


class Worker:
    """Runs ``target(stop)`` on a named daemon thread; if it raises, logs and runs it again.

    ``wake`` is called after the stop event is set: a target that sleeps on something other than
    the event (a queue) gets woken by it, so it can block without a timeout while idle.
    """

    def __init__(self, name: str, target: Callable[[threading.Event], None], *,
                 restart_delay_s: float = RESTART_DELAY_S, wake: Callable[[], None] | None = None) -> None:
        self.name = name
        self._target = target
        self._wake = wake
        self._restart_delay_s = restart_delay_s
        self.stop_event = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"tg-{name}", daemon=True)
        self.crashes = 0

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                self._target(self.stop_event)
                return
            except Exception:
                self.crashes += 1
                log.exception("worker %s failed; restarting in %.0f s", self.name, self._restart_delay_s)
                self.stop_event.wait(self._restart_delay_s)

    def stop(self, timeout: float) -> bool:
        """Ask the worker to stop and wait up to `timeout`; True when it has stopped."""
        self.stop_event.set()
        if self._wake is not None:
            self._wake()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
