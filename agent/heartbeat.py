"""What a heartbeat tells HQ about this PC (DESIGN.md "Wire rules")."""

from __future__ import annotations

import platform as pyplatform
import socket
from typing import Any

import psutil

from agent import __version__
from agent.platform import Platform


class HeartbeatSource:
    """Builds heartbeat payloads; keeps the psutil handle so CPU is measured between beats."""

    def __init__(self, platform: Platform, *, interval_s: float) -> None:
        self._platform = platform
        self._interval_s = interval_s
        self._self = psutil.Process()
        self._self.cpu_percent(None)

    def payload(self, *, policy_version: int | None, staff: str | None, spool_depth: int,
                lost_events: dict[str, int], clock_offset_s: float) -> dict[str, Any]:
        sessions = self._platform.user_sessions()
        return {
            "agent_version": __version__,
            "policy_version": policy_version,
            "os_users": sorted({s.user for s in sessions if s.user})[:32],
            "remote_sessions": [
                {"user": s.user, "host": s.host, "terminal": s.terminal} for s in sessions if s.remote
            ][:32],
            "staff": staff,
            "spool_depth": spool_depth,
            "lost_events": lost_events,
            "clock_offset_s": round(clock_offset_s, 3),
            "cpu_percent": self._self.cpu_percent(None),
            "rss_bytes": self._self.memory_info().rss,
            "interval_s": self._interval_s,
            "hostname": socket.gethostname(),
            "os": f"{pyplatform.system()} {pyplatform.release()}",
        }
