"""A cheap "has any process been created since?" check, to skip the pid listing on idle ticks.

Linux reports the last pid it allocated as the last field of /proc/loadavg (for the reader's pid
namespace). Every fork, and every new thread, allocates a pid, so while that number stands still
no process can have started and the tick need not list /proc at all: one small read instead of
a directory scan of every process. Where the file is missing (Windows, macOS) or unreadable the
hint always answers "maybe", and the sensor lists pids as usual.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Protocol

log = logging.getLogger(__name__)

LOADAVG = "/proc/loadavg"


class StartHint(Protocol):
    def changed(self) -> bool:
        """True when a process may have started since the previous call (or nobody can tell)."""
        ...


class LastPidHint:
    def __init__(self, path: str = LOADAVG, *, platform_name: str | None = None) -> None:
        self._path = path
        self._last: bytes | None = None
        self._fd: int | None = None
        self.enabled = (platform_name or sys.platform).startswith("linux")

    def changed(self) -> bool:
        """True when a pid may have been allocated since the previous call (or nobody can tell)."""
        if not self.enabled:
            return True
        current = self._read()
        if current is None:
            return True
        changed = current != self._last
        self._last = current
        return changed

    def _read(self) -> bytes | None:
        try:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDONLY)
            # procfs regenerates the text on each read from offset 0; the fd is kept open
            # because open+close costs more than the read itself.
            raw = os.pread(self._fd, 256, 0)
            last = raw.split()[-1]
        except (OSError, IndexError) as exc:
            log.warning("%s unreadable (%s); listing pids on every tick", self._path, exc)
            self.close()
            self.enabled = False
            return None
        return last

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __del__(self) -> None:
        self.close()
