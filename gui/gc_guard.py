"""Python's garbage collector, run on the GUI thread only.

Automatic collection runs in whichever thread happens to allocate when a generation's threshold
is crossed. In the tray that may be the status poller or an agent-call thread, and what it frees
may be Qt objects caught in reference cycles (a dialog and the lambda connected to its signal):
Qt objects must be destroyed on the thread they live on, so that is a crash at a random moment.
While the guard runs, automatic collection is off and a timer on the GUI thread collects by the
same generation thresholds Python would use.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

DEFAULT_INTERVAL_MS = 500


class GuiThreadCollector(QObject):
    def __init__(self, interval_ms: int = DEFAULT_INTERVAL_MS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thresholds = gc.get_threshold()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        self._was_enabled = gc.isenabled()

    def start(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        if self._was_enabled:
            gc.enable()

    def check(self) -> int | None:
        """Collect the oldest generation over its threshold; the generation collected, or None."""
        counts = gc.get_count()
        generation = None
        for index, (count, threshold) in enumerate(zip(counts, self._thresholds, strict=True)):
            if threshold and count > threshold:
                generation = index
        if generation is not None:
            gc.collect(generation)
        return generation
