"""End a flagged program and everything it started (policy action `terminate`).

psutil works the same on Windows and Linux, so no platform split is needed here. The pid is
checked against the process's start time first: by the time a rule has fired the program may be
gone and its pid reused by something innocent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psutil

log = logging.getLogger(__name__)

GRACE_S = 3.0
START_TOLERANCE_S = 0.01  # create_time is a float rebuilt from clock ticks; allow its rounding


@dataclass(frozen=True)
class Termination:
    outcome: str  # "terminated", "gone", "pid_reused", "denied"
    pids: tuple[int, ...] = ()


def terminate_tree(pid: int, started: float | None) -> Termination:
    """Terminate, wait `GRACE_S`, then kill what is left; children first so none is orphaned."""
    try:
        root = psutil.Process(pid)
        if started is not None and abs(root.create_time() - started) > START_TOLERANCE_S:
            return Termination("pid_reused")
        tree = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return Termination("gone")
    except psutil.AccessDenied:
        return Termination("denied")
    denied = False
    for proc in tree:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            continue
        except psutil.AccessDenied:
            denied = True
    _, alive = psutil.wait_procs(tree, timeout=GRACE_S)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue
        except psutil.AccessDenied:
            denied = True
    pids = tuple(proc.pid for proc in tree)
    return Termination("denied" if denied else "terminated", pids)
