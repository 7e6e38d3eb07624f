"""The OS seam of the agent: what a platform must answer, as a protocol plus one record type.

Everything OS-specific (where files live, who is logged on, idle time, how the service is run)
goes through this interface so the rest of the agent is the same code on Windows, Linux and
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


class Platform(Protocol):
    name: str

    def default_config_path(self) -> Path: ...

    def default_state_dir(self) -> Path: ...

    def user_sessions(self) -> list[UserSession]: ...

    def idle_seconds(self) -> float | None: ...

    def run_service(self, main: ServiceMain) -> int: ...
