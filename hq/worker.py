"""A named, stoppable thread that runs a few tasks periodically and once more when stopped."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)


class PeriodicWorker(threading.Thread):
    def __init__(self, *, name: str, period_s: float, tasks: Sequence[Callable[[], object]]) -> None:
        super().__init__(name=name, daemon=True)
        self._period_s = period_s
        self._tasks = tuple(tasks)
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self._period_s):
            self.run_once()

    def run_once(self) -> None:
        # One failing task (a database hiccup) must not stop the others or the loop.
        for task in self._tasks:
            try:
                task()
            except Exception:
                log.exception("%s: task %s failed; retrying next period", self.name, getattr(task, "__name__", task))

    def stop(self, timeout_s: float = 10.0, *, final_run: bool = True) -> None:
        """Stop the loop, then run the tasks one last time so buffered state reaches the database."""
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout_s)
        if final_run:
            self.run_once()
