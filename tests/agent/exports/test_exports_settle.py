"""Settling: a file is handed on once it stops changing, or when the OS says it was closed."""

from __future__ import annotations

from agent.exports.settle import SettleTracker, Snapshot


class Disk:
    def __init__(self) -> None:
        self.files: dict[str, Snapshot] = {}

    def stat(self, path: str) -> Snapshot | None:
        return self.files.get(path)


def test_growing_file_waits_until_it_stops_growing() -> None:
    disk, tracker = Disk(), SettleTracker(settle_s=2.0, max_pending=10)
    disk.files["a.csv"] = (100, 1)
    tracker.touch("a.csv", now=0.0)
    assert tracker.due(0.5, disk.stat) == []
    disk.files["a.csv"] = (5000, 2)
    assert tracker.due(1.0, disk.stat) == []
    assert tracker.due(2.9, disk.stat) == []
    assert tracker.due(3.1, disk.stat) == [("a.csv", 5000)]
    assert len(tracker) == 0


def test_closed_file_is_due_at_once_and_a_later_write_reopens_it() -> None:
    disk, tracker = Disk(), SettleTracker(settle_s=2.0, max_pending=10)
    disk.files["b.csv"] = (10, 1)
    tracker.touch("b.csv", now=0.0, closed=True)
    assert tracker.due(0.1, disk.stat) == [("b.csv", 10)]
    tracker.touch("c.csv", now=0.0, closed=True)
    tracker.touch("c.csv", now=0.1)
    disk.files["c.csv"] = (10, 1)
    assert tracker.due(0.2, disk.stat) == []


def test_vanished_files_are_dropped_and_the_tracker_is_bounded() -> None:
    disk, tracker = Disk(), SettleTracker(settle_s=1.0, max_pending=2)
    assert tracker.touch("x", 0.0) and tracker.touch("y", 0.0)
    assert not tracker.touch("z", 0.0)
    assert tracker.touch("x", 0.5)  # known paths are always accepted
    assert tracker.due(1.0, disk.stat) == []
    assert len(tracker) == 0
