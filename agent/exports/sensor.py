"""The export sensor: watchdog events on watch folders and removable drives -> settled files ->
`FileWritten` observations on the output queue. It judges nothing (STYLE.md #1).

Threads: watchdog's observer (its handler only converts and enqueues, STYLE.md #6) and one named
worker that settles files, emits observations and polls the volume list so a USB stick is
watched from the moment it is mounted. Both queues are bounded; drops are counted by reason.
The worker sleeps on its inbox: it wakes for a file event, every TICK_S while files are still
settling, and for the volume check every `volume_poll_s`; idle, that is all.
Native events (inotify, ReadDirectoryChangesW, FSEvents) are used when they work; otherwise,
or when forced, the polling observer, and `mode` says which.
While a file is being written, the worker asks `FileWriters` (agent/exports/writers.py) which
process holds it open for writing, once per tick for all files not yet named, and the
observation carries that process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from agent.exports.settle import SettleTracker, Snapshot
from agent.exports.volumes import Volumes, on_removable
from agent.exports.writers import FakeWriters, FileWriters
from agent.sensors.observations import FileWritten, ProcessInfo

log = logging.getLogger(__name__)

# Browsers and Office write these first and rename (or delete) them when done.
PARTIAL_SUFFIXES = (".crdownload", ".part", ".partial", ".download", ".tmp", ".swp", ".!ut", ".td")
TICK_S = 0.2
BATCH_S = 0.05  # after a file event, let the rest of its burst queue up before the next tick
Inbox = queue.Queue[tuple[str, bool] | None]  # None only wakes the worker (to stop)


class OutQueue(Protocol):
    def put_nowait(self, item: FileWritten, /) -> None: ...


def is_partial(path: str) -> bool:
    name = os.path.basename(path)
    return name.startswith(("~$", ".~lock")) or name.lower().endswith(PARTIAL_SUFFIXES)


class _Enqueue(FileSystemEventHandler):
    """Runs on watchdog's thread: convert the event to (path, closed) and enqueue. Nothing else."""

    def __init__(self, inbox: Inbox, drops: Counter[str]) -> None:
        self._inbox = inbox
        self._drops = drops

    def _put(self, path: bytes | str, closed: bool) -> None:
        try:
            self._inbox.put_nowait((os.fsdecode(path), closed))
        except queue.Full:
            self._drops["event_queue_full"] += 1

    def on_created(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self._put(event.src_path, False)

    def on_modified(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self._put(event.src_path, False)

    def on_moved(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self._put(event.dest_path, False)

    def on_closed(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self._put(event.src_path, True)


def _snapshot(path: str) -> Snapshot | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_size, info.st_mtime_ns) if os.path.isfile(path) else None


class ExportSensor:
    def __init__(self, folders: Sequence[Path], out_queue: OutQueue, *, volumes: Volumes,
                 settle_s: float = 2.0, max_queue: int = 1000, force_polling: bool = False,
                 volume_poll_s: float = 3.0, polling_interval_s: float = 1.0,
                 writers: FileWriters | None = None) -> None:
        self._folders = [Path(folder) for folder in folders]
        self._writers: FileWriters = writers if writers is not None else FakeWriters()
        self._unnamed: set[str] = set()  # being written, writer not asked for since the last event
        self._writer_of: dict[str, ProcessInfo] = {}
        self._out = out_queue
        self._volumes = volumes
        self._force_polling = force_polling
        self._volume_poll_s = volume_poll_s
        self._polling_interval_s = polling_interval_s
        self._inbox: Inbox = queue.Queue(maxsize=max_queue)
        self.drops: Counter[str] = Counter()
        self._handler = _Enqueue(self._inbox, self.drops)
        self._settle = SettleTracker(settle_s, max_queue)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tg-export-sensor", daemon=True)
        self._native: BaseObserver | None = None
        self._polling: BaseObserver | None = None
        self._watches: dict[str, tuple[BaseObserver, ObservedWatch]] = {}
        self._removable: list[Path] = []
        self._next_volume_poll = 0.0

    @property
    def mode(self) -> str:
        """Either "native" (every watch gets OS events) or "polling" (any watch, or all, is polled)."""
        if self._native is None or any(observer is self._polling for observer, _ in self._watches.values()):
            return "polling"
        return "native"

    @property
    def watched(self) -> list[str]:
        return sorted(self._watches)

    def start(self) -> None:
        if not self._force_polling:
            self._native = self._start_native()
        if self._native is None:
            self._polling_observer()
        self._refresh_watches()
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Full):  # a full inbox means the worker is awake anyway
            self._inbox.put_nowait(None)
        if self._thread.is_alive():
            self._thread.join(timeout)
        for observer in (self._native, self._polling):
            if observer is not None:
                observer.stop()
                observer.join(timeout)

    def _start_native(self) -> BaseObserver | None:
        try:
            native = Observer()
            # watchdog found no native API on this OS. The polling module is imported only when
            # used (it is not needed with inotify/ReadDirectoryChangesW); if it was not imported,
            # the observer cannot be one of its classes.
            polling = sys.modules.get("watchdog.observers.polling")
            if polling is not None and isinstance(native, polling.PollingObserver):
                return None
            native.name = "tg-export-observer"
            native.start()
            return native
        except OSError as exc:  # e.g. the inotify instance limit is reached
            log.warning("native file events unavailable (%s); polling instead", exc)
            return None

    def _polling_observer(self) -> BaseObserver:
        if self._polling is None:
            from watchdog.observers.polling import PollingObserver

            self._polling = PollingObserver(timeout=self._polling_interval_s)
            self._polling.name = "tg-export-poller"
            self._polling.start()
        return self._polling

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick(time.monotonic())
            except Exception:  # the loop survives one bad tick; the traceback goes to the log
                log.exception("export sensor tick failed")
            self._wait_for_work()

    def _wait_for_work(self) -> None:
        """Block until a file event, the next settle check or the next volume check."""
        now = time.monotonic()
        timeout = TICK_S if len(self._settle) else max(0.0, self._next_volume_poll - now)
        try:
            first = self._inbox.get(timeout=timeout)
        except queue.Empty:
            return
        if first is not None:
            self._take(first, time.monotonic())
            self._stop.wait(BATCH_S)

    def _tick(self, now: float) -> None:
        if now >= self._next_volume_poll:
            self._next_volume_poll = now + self._volume_poll_s
            self._refresh_watches()
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._take(item, now)
        self._name_writers()
        for path, size in self._settle.due(now, _snapshot):
            self._emit(path, size)
        for gone in [path for path in self._writer_of if path not in self._settle]:
            del self._writer_of[gone]  # settled (popped in _emit) or vanished

    def _take(self, item: tuple[str, bool], now: float) -> None:
        path, closed = item
        if is_partial(path):
            return
        if not self._settle.touch(path, now, closed=closed):
            self.drops["settle_full"] += 1
        elif not closed and path not in self._writer_of:
            self._unnamed.add(path)

    def _name_writers(self) -> None:
        """One question for every file written since the last tick whose writer is not known yet."""
        if not self._unnamed:
            return
        asked, self._unnamed = self._unnamed, set()
        try:
            self._writer_of.update(self._writers.writers(asked))
        except OSError as exc:
            log.debug("cannot name the writers of %d files: %s", len(asked), exc)

    def _emit(self, path: str, size: int) -> None:
        observation = FileWritten(path=path, size=size, removable=on_removable(path, self._removable),
                                  observed_at=time.time(), process=self._writer_of.pop(path, None))
        try:
            self._out.put_nowait(observation)
        except queue.Full:
            self.drops["out_queue_full"] += 1

    def _refresh_watches(self) -> None:
        """Watch every existing folder and mounted removable drive; forget drives that went away."""
        try:
            self._removable = list(self._volumes.removable_mounts())
        except OSError as exc:
            log.warning("cannot list removable drives: %s", exc)
        wanted = {str(path) for path in (*self._folders, *self._removable) if path.is_dir()}
        for gone in set(self._watches) - wanted:
            self._unschedule(gone)
        for path in sorted(wanted - set(self._watches)):
            self._schedule(path)

    def _schedule(self, path: str) -> None:
        if self._native is not None:
            try:
                self._watches[path] = (self._native, self._native.schedule(self._handler, path, recursive=True))
                return
            except OSError as exc:  # e.g. the inotify watch limit on a large tree
                log.warning("native events unavailable for %s (%s); polling it", path, exc)
        try:
            polling = self._polling_observer()
            self._watches[path] = (polling, polling.schedule(self._handler, path, recursive=True))
        except OSError as exc:
            log.warning("cannot watch %s: %s", path, exc)

    def _unschedule(self, path: str) -> None:
        observer, watch = self._watches.pop(path)
        try:
            observer.unschedule(watch)
        except (KeyError, OSError) as exc:
            log.debug("unschedule %s: %s", path, exc)
