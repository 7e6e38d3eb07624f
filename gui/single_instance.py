"""One tray per user: a QLockFile in the user's runtime directory.

QLockFile writes the holder's pid, so a lock left by a crashed tray is recognised as stale and
taken over instead of locking the user out until reboot.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QLockFile, QStandardPaths

LOCK_NAME = "terminal-guard-tray.lock"


def default_lock_path() -> Path:
    runtime = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.RuntimeLocation)
    if not runtime:
        runtime = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.TempLocation)
    return Path(runtime) / LOCK_NAME


class SingleInstance:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_lock_path()
        self._lock = QLockFile(str(self.path))
        self._lock.setStaleLockTime(0)  # stale only when the holder's pid is gone, never by age

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self._lock.tryLock(200)

    def release(self) -> None:
        self._lock.unlock()
