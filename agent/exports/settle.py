"""Waiting until a written file stops changing, as a pure helper (times passed in as `now`).

A file is ready when two looks saw the same size and mtime and nothing changed for `settle_s`, or
at once when the latest event was the OS reporting it closed after writing (inotify; Windows
has no such event, so there the settle time applies). Entries are bounded:
beyond `max_pending` new paths are refused and the caller counts the drop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Snapshot = tuple[int, int]  # (size, mtime_ns)
StatFn = Callable[[str], Snapshot | None]


@dataclass
class _Pending:
    snapshot: Snapshot | None
    changed_at: float
    closed: bool


class SettleTracker:
    def __init__(self, settle_s: float, max_pending: int) -> None:
        self.settle_s = settle_s
        self.max_pending = max_pending
        self._pending: dict[str, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, path: object) -> bool:
        return path in self._pending

    def touch(self, path: str, now: float, *, closed: bool = False) -> bool:
        """A write was seen. False when the path is new and the tracker is full."""
        entry = self._pending.get(path)
        if entry is None:
            if len(self._pending) >= self.max_pending:
                return False
            self._pending[path] = _Pending(None, now, closed)
            return True
        entry.changed_at = now
        entry.closed = closed  # the latest event decides: a write after a close reopens it
        return True

    def due(self, now: float, stat: StatFn) -> list[tuple[str, int]]:
        """Paths (with size) that have settled; they leave the tracker. Vanished files are dropped."""
        ready: list[tuple[str, int]] = []
        for path, entry in list(self._pending.items()):
            snapshot = stat(path)
            if snapshot is None:
                del self._pending[path]
                continue
            previous, entry.snapshot = entry.snapshot, snapshot
            if not entry.closed:
                if previous is None or previous != snapshot:
                    if previous is not None:
                        entry.changed_at = now  # still being written
                    continue
                if now - entry.changed_at < self.settle_s:
                    continue
            ready.append((path, snapshot[0]))
            del self._pending[path]
        return ready
