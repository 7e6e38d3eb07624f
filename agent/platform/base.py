"""The OS seam of the agent: what a platform must answer, as a protocol plus one record type.

Everything OS-specific (where files live, who is logged on, idle time, screen locks, how the
service is run) goes through this interface so the rest of the agent is the same code on Windows, Linux and
in tests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

ServiceMain = Callable[[threading.Event], int]


@dataclass(frozen=True)
class UserSession:
    """One logged-on OS user session, as the OS reports it (no judgement here)."""

    user: str
    terminal: str | None
    host: str | None
    started: float
    remote: bool


@dataclass(frozen=True)
class ScreenLockChange:
    """The OS locked or unlocked the screen of one user session (no judgement here).

    ``console`` says the session sits at this PC's own screen and keyboard (not RDP or SSH).
    """

    locked: bool
    session: str
    user: str | None
    console: bool


ScreenLockListener = Callable[[ScreenLockChange], None]
# Called with None once locks are being watched, with the reason when they cannot be (again on
# every change of that state), so the service can show it in `status`.
WatchStateListener = Callable[[str | None], None]


class ScreenLockWatch(Protocol):
    """Tells one listener about screen locks, from a thread of its own, until stopped."""

    def start(self, on_change: ScreenLockListener, on_state: WatchStateListener) -> None: ...

    def stop(self, timeout: float) -> bool: ...


class Platform(Protocol):
    name: str

    def default_config_path(self) -> Path: ...

    def default_state_dir(self) -> Path: ...

    def user_sessions(self) -> list[UserSession]: ...

    def idle_seconds(self) -> float | None: ...

    def screen_lock_watch(self) -> ScreenLockWatch: ...

    def run_service(self, main: ServiceMain) -> int: ...
