"""Repeats folded per (rule, program, command line) per window: a tool left running or relaunched in
a loop is one report every window with a count, not a flood."""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from collections.abc import Callable

from agent.findings import Finding

WINDOW_S = 600.0
MAX_KEYS = 4096
REPEATS_FIELD = "repeats"  # how many identical findings were folded since this one was last reported


def finding_key(finding: Finding) -> tuple[object, ...]:
    f = finding.fields
    return (finding.rule, f.get("process.executable"), f.get("process.command_line"),
            f.get("destination.ip"), f.get("source.ip"), f.get("file.hash.sha256"))


class Dedupe:
    def __init__(self, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window_s
        self._clock = clock
        self._seen: OrderedDict[tuple[object, ...], list[float]] = OrderedDict()  # key -> [reported at, folded]
        self.suppressed = 0

    def admit(self, finding: Finding) -> Finding | None:
        """The finding to report, carrying the count folded since its last report; None to fold it."""
        now = self._clock()
        key = finding_key(finding)
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self._window:
            seen[1] += 1
            self.suppressed += 1
            return None
        folded = int(seen[1]) if seen is not None else 0
        self._seen[key] = [now, 0]
        self._seen.move_to_end(key)
        while len(self._seen) > MAX_KEYS:
            self._seen.popitem(last=False)
        if not folded:
            return finding
        return dataclasses.replace(finding, fields={**finding.fields, REPEATS_FIELD: folded})

    def fresh(self, finding: Finding) -> bool:
        """True the first time a finding is seen within the window."""
        return self.admit(finding) is not None
