"""Named, stoppable threads whose loop survives its own exceptions (STYLE.md #5)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

RESTART_DELAY_S = 5.0


class Worker:
    """Runs ``target(stop)`` on a named daemon thread; if it raises, logs and runs it again."""

    def __init__(self, name: str, target: Callable[[threading.Event], None], *,
                 restart_delay_s: float = RESTART_DELAY_S) -> None:
        self.name = name
        self._target = target
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
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
