"""The per-device request sequence number that HQ requires to increase strictly.

Writing the counter on every request would cost a disk sync each time; instead a block of numbers
is reserved on disk and handed out from memory (hi-lo). A crash skips the rest of the block, which
keeps the sequence increasing — the only property HQ checks.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

BLOCK = 1000


class SequenceError(RuntimeError):
    pass


class RequestSequence:
    def __init__(self, path: Path, *, block: int = BLOCK) -> None:
        self._path = path
        self._block = block
        self._lock = threading.Lock()
        self._next = self._read_reserved()
        self._reserved = self._next

    def _read_reserved(self) -> int:
        try:
            text = self._path.read_text("ascii").strip()
        except FileNotFoundError:
            return 1
        except OSError as exc:
            raise SequenceError(f"{self._path}: cannot read request sequence: {exc}") from exc
        if not text.isdigit():
            raise SequenceError(f"{self._path}: expected a whole number, got {text[:40]!r}")
        return int(text) + 1

    def _reserve(self, upto: int) -> None:
        tmp = self._path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, str(upto).encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._path)
        self._reserved = upto

    def next(self) -> int:
        with self._lock:
            if self._next >= self._reserved:
                self._reserve(self._next + self._block)
            value = self._next
            self._next += 1
            return value
