"""The per-device request sequence number that HQ requires to increase strictly.

A value is the larger of "last value + 1" and the wall clock in microseconds, so two processes
of the same device (the service and a `doctor` run) hand out increasing numbers without talking to
each other. A ceiling is reserved on disk a little ahead (hi-lo): a restart after the clock jumped
back continues above every number already used, without a disk sync per request. A process that
HQ tells "replayed" (another process of the device went ahead) skips past the reserved ceiling.

A reservation that cannot be written (disk full) must not stop requests: numbering goes on in memory,
which stays increasing while the process runs, and the reservation is retried on the next call. Only a
restart after the clock went back could then reuse a number; HQ refuses it as replayed, as it would any.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

RESERVE_AHEAD_US = 10 * 1_000_000


class SequenceError(RuntimeError):
    pass


class RequestSequence:
    def __init__(self, path: Path, *, clock_us: Callable[[], int] = lambda: time.time_ns() // 1000) -> None:
        self._path = path
        self._clock_us = clock_us
        self._lock = threading.Lock()
        self._reserved = self._read_reserved()
        # Numbers issued so far are at most the reserved ceiling and, unless the clock went back, at
        # most "now"; only a clock that is behind the last reservation forces a jump above it.
        clock_went_back = self._clock_us() < self._reserved - RESERVE_AHEAD_US
        self._next = self._reserved + 1 if clock_went_back else 1
        self._reserve_failing = False

    def _read_reserved(self) -> int:
        try:
            text = self._path.read_text("ascii").strip()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise SequenceError(f"{self._path}: cannot read request sequence: {exc}") from exc
        if not text.isdigit():
            raise SequenceError(f"{self._path}: expected a whole number, got {text[:40]!r}")
        return int(text)

    def _reserve(self, upto: int) -> None:
        tmp = self._path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            try:
                os.write(fd, str(upto).encode("ascii"))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self._path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise
        self._reserved = upto

    def next(self) -> int:
        with self._lock:
            value = max(self._next, self._clock_us())
            if value > self._reserved:
                self._try_reserve(value + RESERVE_AHEAD_US)
            self._next = value + 1
            return value

    def _try_reserve(self, upto: int) -> None:
        try:
            self._reserve(upto)
        except OSError as exc:
            if not self._reserve_failing:
                log.warning("%s: cannot reserve request sequence numbers (%s); numbering in memory until "
                            "the file can be written again", self._path, exc)
            self._reserve_failing = True
            return
        if self._reserve_failing:
            log.warning("%s: request sequence reserved on disk again", self._path)
        self._reserve_failing = False

    def skip_ahead(self) -> None:
        """Continue above everything any process of this device may have reserved."""
        with self._lock:
            self._next = max(self._next, self._read_reserved() + 1)
