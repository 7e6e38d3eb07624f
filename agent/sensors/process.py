"""Process sensor: every new process, soon after it starts, without re-reading the whole table.

Each tick lists pids only (``psutil.pids()``: one directory read on Linux, one
EnumProcesses call on Windows) and diffs them against the pids already known; only the new ones
are opened and read, inside ``oneshot()``. On Linux even the listing is skipped while the last
allocated pid (/proc/loadavg) has not moved: see pid_hint.py. That is what keeps the sensor cheap enough to run at
10 Hz (bench/bench_process_sensor.py measures it against a full ``process_iter`` re-read).

Given ``events`` (Linux, root: the kernel's process events, proc_events.py) the sensor does not
poll at all while nothing happens: it ticks 20 ms after a process forks or execs (at most once
per 50 ms), when a held copy of a parent is due, and otherwise only for the safety listing
every ``full_listing_s`` (5 s by default in this mode). Such a tick lists nothing: the fork
events name the new pids. When events were lost the tick lists pids as usual. Short-lived
processes that polling would miss between two ticks are seen too.

On POSIX a program starts as fork (a copy of its parent) and then exec (same pid, same create
time, new program). A tick can land between the two, so each new process stays "young" for
``exec_window_s``: its exe and command line are re-read each tick, and an exec is reported as a
new ProcessStarted. A child that is still an exact copy of its parent is held back for
``clone_grace_s`` so the copy is not reported as if the parent had started again.

Known limit: a pid that exits and is reused between two listings (one tick when polling; with
events, before any other process starts) looks unchanged and is missed; Linux hands out pids in
increasing order, so in practice this needs pid wrap-around.
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
from agent.sensors.pid_hint import LastPidHint, StartHint
from agent.sensors.proc_events import ProcessEvents
from agent.sensors.procinfo import image_of, is_parent_of, open_info, read_image, read_info
from agent.sensors.worker import EventWorker, PollingWorker

log = logging.getLogger(__name__)

MAX_YOUNG = 512  # a fork bomb must not turn the cheap tick into a full re-read
POLLING_FULL_LISTING_S = 1.0
# With process events a listing runs on every fork and exec anyway; this one forgets processes
# that ended and covers events the kernel dropped or never sent.
EVENTS_FULL_LISTING_S = 5.0
# Ticks on events are at least this far apart, and each waits a moment after the event so the
# exec that usually follows a fork is seen by the same tick (no held copy, no half-exec'd read).
EVENTS_MIN_GAP_S = 0.05
EVENTS_SETTLE_S = 0.02


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
        full_listing_s: float | None = None,
        pid_hint: StartHint | None = None,
        events: ProcessEvents | None = None,
    ) -> None:
        self._out = out
        self._hasher = (hasher or ExeHashCache()) if hash_exe else None
        self._pe_reader = pe_reader
        self._platform_name = platform_name
        self._pe: PeInfoReader | None = None
        self.set_pe_info(want_pe_info)
        self._exec_window = exec_window_s
        self._clone_grace = min(clone_grace_s, exec_window_s)
        # pid -> create time (None for processes seen at prime, whose details were never read).
        self._known: dict[int, float | None] = {}
        # Details of processes read so far, kept while they run: they are the parents of what
        # starts next, and a parent that is still running need not be read twice.
        self._infos: dict[int, ProcessInfo] = {}
        self._young: dict[int, _Young] = {}
        self._events = events
        self._hint: StartHint = events or pid_hint or LastPidHint(platform_name=platform_name)
        default_listing_s = POLLING_FULL_LISTING_S if events is None else EVENTS_FULL_LISTING_S
        self._full_listing_s = default_listing_s if full_listing_s is None else full_listing_s
        self._next_full_listing = 0.0
        self._interval = interval_s
        self._primed = False
        self._lock = threading.Lock()
        self._worker: PollingWorker | EventWorker
        if events is None:
            self._worker = PollingWorker("tg-sensor-process", interval_s, self.poll)
        else:
            self._worker = EventWorker("tg-sensor-process", self.poll, wakeup=events,
                                       min_gap_s=min(interval_s, EVENTS_MIN_GAP_S), next_wait=self._next_wait,
                                       settle_s=EVENTS_SETTLE_S)
        self.reported = 0
        self.listings = 0  # ticks that listed pids (the others were skipped by the pid hint)
        self.execs = 0  # re-reports of a young process that exec'd another program
        self.vanished = 0  # new pids that were gone (or unopenable) before they could be read

    @property
    def name(self) -> str:
        return self._worker.name

    def set_pe_info(self, wanted: bool) -> None:
        """Read Windows version info of new programs only while a rule uses it (a file parse each)."""
        if wanted and self._pe is None:
            self._pe = self._pe_reader or PeInfoReader(platform_name=self._platform_name)
        elif not wanted:
            self._pe = None

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
        """Stop the thread; the process event subscription, owned by the sensor, is closed too."""
        stopped = self._worker.stop(timeout)
        if stopped and self._events is not None:
            self._events.close()
        return stopped

    def is_alive(self) -> bool:
        return self._worker.is_alive()

    @property
    def mode(self) -> str:
        """"events" while the kernel's process events drive the sensor, else "polling"."""
        return "events" if self._events is not None and self._events.healthy else "polling"

    def _next_wait(self) -> float:
        """How long the event-driven loop may sleep when no process event comes.

        An exec raises an event of its own, so young processes need no ticks to catch it; only
        a held copy of its parent must be released on time. Polling resumes if events broke.
        """
        if self.mode == "polling":
            return self._interval
        with self._lock:
            deadlines = [y.held_until for y in self._young.values() if y.held_until is not None]
        return min([*deadlines, self._next_full_listing]) - time.monotonic()

    def _read_new_pids(self, clock: float) -> list[ProcessInfo]:
        due = clock >= self._next_full_listing
        if self._events is not None and not due:
            started = self._events.take_started()
            if started is not None:  # the kernel named every process started since the last tick
                return self._read_pids(started - self._known.keys(), clock)
        elif not due and not self._hint.changed():
            # No pid allocated since the last listing: nothing can have started. A full listing
            # still runs every ``full_listing_s`` to forget processes that exited.
            return []
        if self._events is not None:
            self._events.take_started()  # the listing below sees those processes
        self._next_full_listing = clock + self._full_listing_s
        self.listings += 1
        current = set(psutil.pids())
        # Set differences run in C: on an idle table the whole tick is one listing and two of them.
        for pid in self._known.keys() - current:
            del self._known[pid]
            self._infos.pop(pid, None)
            self._young.pop(pid, None)
        return self._read_pids(current - self._known.keys(), clock)

    def _read_pids(self, pids: set[int], clock: float) -> list[ProcessInfo]:
        """Open and remember each new pid; the ones whose report is not held back are returned."""
        ready = []
        for pid in sorted(pids):
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
        # A program whose command line reads empty is in the middle of its exec (the kernel swaps
        # the memory the line is read from): reported now, it would be reported again a tick later.
        mid_exec = info.exe is not None and not info.cmdline
        held = clock + self._clone_grace if is_copy or mid_exec else None
        self._young[info.pid] = _Young(handle, info, clock + self._exec_window, held)
        return held is None

    def _watch_young(self, clock: float) -> list[ProcessInfo]:
        ready = []
        for pid, young in list(self._young.items()):
            image = read_image(young.handle)
            if image is not None and image[0] is not None and not image[1]:
                image = image_of(young.info)  # mid-exec, the command line is not readable yet: next tick
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
        pe = self._pe  # read once: the detection thread may switch it off meanwhile
        version = pe.read(info.exe) if pe is not None else None
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
