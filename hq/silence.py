"""The silent-PC monitor: one alert when a device stops beating, cleared when it beats again.

The database says who looks overdue (it is at most one flush behind), memory says whether a
beat arrived since, and a conditional UPDATE makes the transition happen exactly once, so two
monitors racing can never raise two alerts for one silence.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from sqlalchemy.orm import sessionmaker

from agent.events import PRIORITY_HIGH
from hq.heartbeats import LiveState
from hq.store.devices import mark_silent, overdue_devices
from hq.store.events import record_hq_event

log = logging.getLogger(__name__)

ALERT_DEVICE_SILENT = "alert.device_silent"


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


class SilenceMonitor:
    def __init__(
        self, *, sessions: sessionmaker, live: LiveState, silent_after_s: float, default_interval_s: float
    ) -> None:
        self._sessions = sessions
        self._live = live
        self._silent_after_s = silent_after_s
        self._default_interval_s = default_interval_s

    def check(self, now: float | None = None) -> list[str]:
        """Mark newly silent devices and store their alerts; return their ids."""
        now = time.time() if now is None else now
        default_interval = self._default_interval_s
        with self._sessions() as session:
            candidates = overdue_devices(
                session, now=now, silent_after_s=self._silent_after_s, default_interval_s=default_interval
            )
        silenced = []
        for device_id, last_heartbeat, enrolled_at in candidates:
            heard = self._live.heard_since(device_id)
            if heard is not None and (last_heartbeat is None or heard > last_heartbeat):
                continue  # it beat since the last flush; the next flush will show it
            if self._silence(device_id, last_heartbeat, enrolled_at, now, default_interval):
                self._live.silenced(device_id, checked_heartbeat=heard)
                silenced.append(device_id)
        if silenced:
            log.warning("%d device(s) went silent", len(silenced))
        return silenced

    def _silence(
        self, device_id: str, last_heartbeat: float | None, enrolled_at: float, now: float, default_interval: float
    ) -> bool:
        with self._sessions.begin() as session:
            if not mark_silent(
                session,
                device_id=device_id,
                now=now,
                silent_after_s=self._silent_after_s,
                default_interval_s=default_interval,
            ):
                return False
            record_hq_event(
                session,
                device_id=device_id,
                kind=ALERT_DEVICE_SILENT,
                body={
                    "device_id": device_id,
                    "last_heartbeat": _iso(last_heartbeat),
                    "enrolled_at": _iso(enrolled_at),
                    "silent_after_s": self._silent_after_s,
                },
                now=now,
                priority=PRIORITY_HIGH,
            )
        return True
