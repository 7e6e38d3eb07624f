"""A small time-to-live cache for the console's fleet-wide aggregates.

At fleet scale the overview's GROUP BYs and charts cost tens of milliseconds each, and a dozen
analysts looking at one screen should not multiply that. Counts are cached for a few seconds
(the database itself is a flush interval behind), day and hour charts for a minute.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")
MAX_ENTRIES = 256


class TtlCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[float, Any]] = {}

    def get(self, key: Hashable, ttl_s: float, load: Callable[[], T], *, now: float | None = None) -> T:
        now = time.monotonic() if now is None else now
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        value = load()  # outside the lock: two loads at once cost a query, never a wait
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
            self._entries[key] = (now + ttl_s, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
