"""A bounded cache of per-file results that stays right when the file changes.

Hashing an executable or parsing its version resource is the expensive part of seeing a
process; a burst of Chrome renderers shares one ``chrome.exe``. Results are keyed by path and
checked against the file's size and modification time, so a file replaced in place (same path,
new content) is read again, while an unchanged one is served from memory.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class FileStamp:
    """What must stay equal for a cached result to still describe the file."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str) -> FileStamp | None:
        try:
            st = os.stat(path)
        except (OSError, ValueError):  # ValueError: embedded NUL in a path from /proc
            return None
        return cls(size=st.st_size, mtime_ns=st.st_mtime_ns)


class FileResultCache(Generic[T]):
    """Least-recently-used map of path -> (stamp, result), at most ``max_entries`` paths.

    ``compute`` runs outside the lock: two threads asking for the same new file may both compute
    it, which costs time but never a wrong answer, and a slow file never blocks other lookups.
    """

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries: expected at least 1, got {max_entries}")
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[FileStamp, T | None]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, path: str, compute: Callable[[str, FileStamp], T | None]) -> T | None:
        stamp = FileStamp.of(path)
        if stamp is None:
            return None
        with self._lock:
            cached = self._entries.get(path)
            if cached is not None and cached[0] == stamp:
                self._entries.move_to_end(path)
                self.hits += 1
                return cached[1]
            self.misses += 1
        result = compute(path, stamp)
        with self._lock:
            # A negative result (unreadable, too big) is cached too, so a file that cannot be
            # read is not retried on every process that runs it.
            self._entries[path] = (stamp, result)
            self._entries.move_to_end(path)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return result

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
