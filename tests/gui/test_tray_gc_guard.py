"""The tray's garbage collection runs on the GUI thread only (gui/gc_guard.py)."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QApplication

from gui.gc_guard import GuiThreadCollector


class Cyclic(QObject):
    """A Qt object kept alive only by a reference cycle, as a dialog and its slot lambda are."""

    def __init__(self) -> None:
        super().__init__()
        self.me = self


@pytest.fixture
def collector(qapp: QApplication) -> Iterator[GuiThreadCollector]:
    guard = GuiThreadCollector(interval_ms=20)
    guard.start()
    try:
        yield guard
    finally:
        guard.stop()


def _make_garbage() -> tuple[weakref.ref[Any], list[str]]:
    freed_on: list[str] = []
    victim = Cyclic()
    ref = weakref.ref(victim, lambda _ref: freed_on.append(threading.current_thread().name))
    del victim
    return ref, freed_on


def test_a_worker_thread_allocating_never_frees_qt_objects(collector: GuiThreadCollector, qtbot: Any) -> None:
    assert not gc.isenabled()
    ref, freed_on = _make_garbage()

    kept: list[list[int]] = []

    def allocate() -> None:  # well past the youngest threshold: Python would collect on this thread
        kept.extend([index] for index in range(50_000))

    worker = threading.Thread(target=allocate, name="tg-tray-call-0")
    worker.start()
    worker.join()
    assert ref() is not None and freed_on == []  # the worker thread did not collect it
    qtbot.waitUntil(lambda: ref() is None, timeout=5000)  # the GUI thread's timer did
    assert freed_on == [threading.main_thread().name]
    kept.clear()


def test_stopping_gives_automatic_collection_back(qapp: QApplication) -> None:
    guard = GuiThreadCollector()
    gc.enable()
    guard.start()
    assert not gc.isenabled()
    guard.stop()
    assert gc.isenabled()
    gc.disable()  # as the autouse fixture of tests/conftest.py had it for this Qt test


def test_check_collects_the_oldest_generation_over_its_threshold(collector: GuiThreadCollector) -> None:
    gc.collect()
    assert collector.check() is None  # nothing over any threshold right after a full collection
    junk = [[index] for index in range(gc.get_threshold()[0] + 10)]
    assert collector.check() == 0
    del junk
