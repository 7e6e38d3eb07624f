"""A platform for tests: paths under a temporary root, sessions, idle time and screen locks set by
the test.

``run_service`` runs main in the calling thread with a fresh stop event that the test can set
(``platform.stop``) from another thread, or that main sets itself. ``lock``/``unlock`` tell the
started screen-lock listener at once, in the test's thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from agent.platform.base import ScreenLockChange, ScreenLockListener, ServiceMain, UserSession, WatchStateListener


@dataclass
class FakeScreenLocks:
    """The fake's screen-lock watch; ``problem`` set before start makes it report itself unavailable."""

    problem: str | None = None
    listener: ScreenLockListener | None = None
    running: bool = False

    def start(self, on_change: ScreenLockListener, on_state: WatchStateListener) -> None:
        self.listener, self.running = on_change, True
        on_state(self.problem)

    def stop(self, timeout: float) -> bool:
        self.running = False
        return True

    def change(self, change: ScreenLockChange) -> None:
        if self.running and self.problem is None and self.listener is not None:
            self.listener(change)


@dataclass
class FakePlatform:
    root: Path
    sessions: list[UserSession] = field(default_factory=list)
    idle: float | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    runs: int = 0
    name: str = "fake"
    screen_locks: FakeScreenLocks = field(default_factory=FakeScreenLocks)

    def default_config_path(self) -> Path:
        return self.root / "etc" / "agent.toml"

    def default_state_dir(self) -> Path:
        return self.root / "state"

    def user_sessions(self) -> list[UserSession]:
        return list(self.sessions)

    def idle_seconds(self) -> float | None:
        return self.idle

    def screen_lock_watch(self) -> FakeScreenLocks:
        return self.screen_locks

    def lock(self, *, session: str = "1", user: str | None = "clerk", console: bool = True) -> None:
        self.screen_locks.change(ScreenLockChange(locked=True, session=session, user=user, console=console))

    def unlock(self, *, session: str = "1", user: str | None = "clerk", console: bool = True) -> None:
        self.screen_locks.change(ScreenLockChange(locked=False, session=session, user=user, console=console))

    def run_service(self, main: ServiceMain) -> int:
        self.runs += 1
        return main(self.stop)
