"""Process sensor: every new process, soon after it starts, without re-reading the whole table.

Each tick lists pids only (``psutil.pids()``: one directory read on Linux, one
EnumProcesses call on Windows) and diffs them against the pids already known; only the new ones
are opened and read, inside ``oneshot()``. On Linux even the listing is skipped while the last
allocated pid (/proc/loadavg) has not moved: see pid_hint.py. That is what keeps the sensor cheap enough to run at
10 Hz (bench/bench_process_sensor.py measures it against a full ``process_iter`` re-read).

On POSIX a program starts as fork (a copy of its parent) and then exec (same pid, same create
time, new program). A tick can land between the two, so each new process stays "young" for
``exec_window_s``: its exe and command line are re-read each tick, and an exec is reported as a
new ProcessStarted. A child that is still an exact copy of its parent is held back for
``clone_grace_s`` so the copy is not reported as if the parent had started again.

Known limit: a pid that exits and is reused within one tick (100 ms) looks unchanged and is
missed; Linux hands out pids in increasing order, so in practice this needs pid wrap-around.
An exec later than ``exec_window_s`` after the start is not seen either.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from agent.sensors.exe_hash import ExeHashCache
from agent.sensors.observations import ProcessInfo, ProcessStarted
from agent.sensors.pe_info import PeInfoReader
from agent.sensors.pid_hint import LastPidHint
from agent.sensors.procinfo import image_of, is_parent_of, open_info, read_image, read_info
from agent.sensors.worker import PollingWorker

log = logging.getLogger(__name__)

MAX_YOUNG = 512  # a fork bomb must not turn the cheap tick into a full re-read


@dataclass
class _Young:
    handle: psutil.Process
    info: ProcessInfo
    watch_until: float  # monotonic: stop looking for an exec
    held_until: float | None  # a copy of its parent, not reported yet; reported at this time


class ProcessSensor:
    """Emits a ProcessStarted for each process that appears (or execs) after ``prime()``."""

    def __init__(
        self,
        out: Callable[[ProcessStarted], None],
        *,
        interval_s: float = 0.1,
        hash_exe: bool = True,
        want_pe_info: bool = False,
        platform_name: str | None = None,
        hasher: ExeHashCache | None = None,
        pe_reader: PeInfoReader | None = None,
        exec_window_s: float = 1.0,
        clone_grace_s: float = 0.3,
        full_listing_s: float = 1.0,
        pid_hint: LastPidHint | None = None,
    ) -> None:
        self._out = out
        self._hasher = (hasher or ExeHashCache()) if hash_exe else None
        self._pe = (pe_reader or PeInfoReader(platform_name=platform_name)) if want_pe_info else None
        self._exec_window = exec_window_s
        self._clone_grace = min(clone_grace_s, exec_window_s)
        # pid -> create time (None for processes seen at prime, whose details were never read).
        self._known: dict[int, float | None] = {}
        # Details of processes read so far, kept while they run: they are the parents of what
        # starts next, and a parent that is still running need not be read twice.
        self._infos: dict[int, ProcessInfo] = {}
        self._young: dict[int, _Young] = {}
        self._hint = pid_hint or LastPidHint(platform_name=platform_name)
        self._full_listing_s = full_listing_s
        self._next_full_listing = 0.0
        self._primed = False
        self._lock = threading.Lock()
        self._worker = PollingWorker("tg-sensor-process", interval_s, self.poll)
        self.reported = 0
        self.listings = 0  # ticks that listed pids (the others were skipped by the pid hint)
        self.execs = 0  # re-reports of a young process that exec'd another program
        self.vanished = 0  # new pids that were gone (or unopenable) before they could be read

    @property
    def name(self) -> str:
        return self._worker.name

    def prime(self) -> None:
        """Remember what already runs, so that only later processes are reported."""
        with self._lock:
            self._hint.changed()  # read before the listing, so a fork during it shows next tick
            self._next_full_listing = time.monotonic() + self._full_listing_s
            self._known = dict.fromkeys(psutil.pids())
            self._infos.clear()
            self._young.clear()
            self._primed = True

    def poll(self, now: float | None = None) -> list[ProcessStarted]:
        """One tick: read the processes that appeared since the last tick and emit them."""
        observed = time.time() if now is None else now
        clock = time.monotonic()
        with self._lock:
            ready = self._watch_young(clock) + self._read_new_pids(clock)
            events = [
                ProcessStarted(self._enrich(info), self._parent_of(info), observed)
                for info in sorted(ready, key=lambda i: (i.create_time or 0.0, i.pid))
            ]
        for event in events:
            self._emit(event)
        return events

    def snapshot(self) -> list[ProcessStarted]:
        """Every running process with its parent, for a one-shot scan; nothing is emitted."""
        observed = time.time()
        infos = {info.pid: info for pid in psutil.pids() if (info := read_info(pid)) is not None}
        events = []
        for info in sorted(infos.values(), key=lambda i: i.pid):
            parent = infos.get(info.ppid) if info.ppid else None
            if parent is not None and (parent.pid == info.pid or not is_parent_of(parent, info)):
                parent = None
            events.append(ProcessStarted(self._enrich(info), parent, observed))
        return events

    def start(self) -> None:
        if not self._primed:
            self.prime()
        self._worker.start()

    def stop(self, timeout: float = 2.0) -> bool:
        return self._worker.stop(timeout)

    def is_alive(self) -> bool:
        return self._worker.is_alive()

    def _read_new_pids(self, clock: float) -> list[ProcessInfo]:
        # No pid allocated since the last listing: nothing can have started. A full listing still
        # runs every ``full_listing_s`` to forget processes that exited.
        if not self._hint.changed() and clock < self._next_full_listing:
            return []
        self._next_full_listing = clock + self._full_listing_s
        self.listings += 1
        current = set(psutil.pids())
        # Set differences run in C: on an idle table the whole tick is one listing and two of them.
        for pid in self._known.keys() - current:
            del self._known[pid]
            self._infos.pop(pid, None)
            self._young.pop(pid, None)
        ready = []
        for pid in sorted(current - self._known.keys()):
            opened = open_info(pid)
            if opened is None:
                # Not remembered: if the pid shows up again it is a different process.
                self.vanished += 1
                continue
            handle, info = opened
            self._known[pid] = info.create_time
            self._infos[pid] = info
            if self._track_young(handle, info, clock):
                ready.append(info)
        return ready

    def _track_young(self, handle: psutil.Process, info: ProcessInfo, clock: float) -> bool:
        """Start watching a new process for an exec; False when its report is held back."""
        if len(self._young) >= MAX_YOUNG:
            return True
        parent = self._parent_of(info)
        is_copy = parent is not None and image_of(parent) == image_of(info)
        held = clock + self._clone_grace if is_copy else None
        self._young[info.pid] = _Young(handle, info, clock + self._exec_window, held)
        return held is None

    def _watch_young(self, clock: float) -> list[ProcessInfo]:
        ready = []
        for pid, young in list(self._young.items()):
            image = read_image(young.handle)
            if image is not None and image != image_of(young.info):
                fresh = read_info(pid)
                if fresh is not None:
                    self.execs += 1
                    young.info = fresh
                    young.held_until = None
                    self._infos[pid] = fresh
                    ready.append(fresh)
            elif young.held_until is not None and (image is None or clock >= young.held_until):
                # The copy never exec'd (a forking server's worker) or is gone: it was a process too.
                young.held_until = None
                ready.append(young.info)
            if image is None or (clock >= young.watch_until and young.held_until is None):
                del self._young[pid]
        return ready

    def _parent_of(self, info: ProcessInfo) -> ProcessInfo | None:
        ppid = info.ppid
        if not ppid or ppid == info.pid:
            return None
        parent = self._infos.get(ppid)
        if parent is None:
            parent = read_info(ppid)
            if parent is not None and ppid in self._known:
                self._infos[ppid] = parent
        if parent is None or not is_parent_of(parent, info):
            return None
        return parent

    def _enrich(self, info: ProcessInfo) -> ProcessInfo:
        sha256 = self._hasher.sha256(info.exe) if self._hasher is not None else None
        version = self._pe.read(info.exe) if self._pe is not None else None
        if sha256 is None and version is None:
            return info
        return dataclasses.replace(
            info,
            exe_sha256=sha256,
            original_file_name=version.original_file_name if version else None,
            company=version.company if version else None,
            product=version.product if version else None,
            description=version.description if version else None,
        )

    def _emit(self, event: ProcessStarted) -> None:
        self.reported += 1
        try:
            self._out(event)
        except Exception:
            # A failing consumer must not cost the other processes of this tick their event.
            log.exception("process sensor consumer failed for pid %s", event.process.pid)
