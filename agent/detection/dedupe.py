"""One finding per (rule, program, command line) per window: a tool left running is one alert, not a flood."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from agent.findings import Finding

WINDOW_S = 600.0
MAX_KEYS = 4096


def finding_key(finding: Finding) -> tuple[object, ...]:
    f = finding.fields
    return (finding.rule, f.get("process.executable"), f.get("process.command_line"),
            f.get("destination.ip"), f.get("source.ip"), f.get("file.hash.sha256"))


class Dedupe:
    def __init__(self, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window_s
        self._clock = clock
        self._seen: OrderedDict[tuple[object, ...], float] = OrderedDict()
        self.suppressed = 0

    def fresh(self, finding: Finding) -> bool:
        """True the first time a finding is seen within the window."""
        now = self._clock()
        key = finding_key(finding)
        last = self._seen.get(key)
        if last is not None and now - last < self._window:
            self.suppressed += 1
            return False
        self._seen[key] = now
        self._seen.move_to_end(key)
        while len(self._seen) > MAX_KEYS:
            self._seen.popitem(last=False)
        return True
