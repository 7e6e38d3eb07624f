"""A platform for tests: paths under a temporary root, sessions and idle time set by the test.

``run_service`` runs main in the calling thread with a fresh stop event that the test can set
(``platform.stop``) from another thread, or that main sets itself.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from agent.platform.base import ServiceMain, UserSession


@dataclass
class FakePlatform:
    root: Path
    sessions: list[UserSession] = field(default_factory=list)
    idle: float | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    runs: int = 0
    name: str = "fake"

    def default_config_path(self) -> Path:
        return self.root / "etc" / "agent.toml"

    def default_state_dir(self) -> Path:
        return self.root / "state"

    def user_sessions(self) -> list[UserSession]:
        return list(self.sessions)

    def idle_seconds(self) -> float | None:
        return self.idle

    def run_service(self, main: ServiceMain) -> int:
        self.runs += 1
        return main(self.stop)
