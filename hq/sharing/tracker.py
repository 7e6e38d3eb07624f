"""The facts the sharing rules judge, gathered from verify decisions, sign-ins, gateway query
reports, device findings and heartbeats, and handed rule by rule to the responder.

Everything here is in memory and cheap (dict lookups, a few comparisons), because most of it runs
on the verify path. Sign-ins and findings are rare and may come from a worker thread; a lock
guards the shapes that both touch.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hq.binding.memory import PolicyView
from hq.binding.verify import Decision
from hq.heartbeats import LiveState
from hq.sharing import rules
from hq.sharing.baseline import Baselines
from hq.sharing.rules import SharingAlert

REMOTE_CATEGORIES = frozenset({"remote_access", "tunnel"})
DEFAULT_INTERVAL_S = 10.0


@dataclass(frozen=True, slots=True)
class ActiveSession:
    staff: str
    sid: str
    outlet: str
    expires_at: float


class SharingTracker:
    def __init__(self, *, policy: PolicyView, live: LiveState, baselines: Baselines,
                 respond: Callable[[SharingAlert], str | None]) -> None:
        self._policy = policy
        self._live = live
        self._baselines = baselines
        self._respond = respond
        self._lock = threading.Lock()
        self._active: dict[str, ActiveSession] = {}  # device -> the staff signed in there
        self._seen: dict[str, dict[str, float]] = {}  # staff -> device -> last allowed request
        self._signins: dict[str, deque[tuple[str, float]]] = {}  # device -> (staff, at), last hour

    def _raise(self, alerts: Iterable[SharingAlert | None]) -> None:
        for alert in alerts:
            if alert is not None:
                self._respond(alert)

    # --- sessions ---------------------------------------------------------------------------

    def session_started(self, *, device: str, staff: str, sid: str, outlet: str, expires_at: float, at: float,
                        recent: list[tuple[str, float]] | None = None) -> None:
        """A sign-in (or refresh) on a PC; ``recent`` seeds the hour of sign-ins after a restart."""
        with self._lock:
            self._active[device] = ActiveSession(staff, sid, outlet, expires_at)
            signins = self._signins.setdefault(device, deque())
            if recent and not signins:
                signins.extend(sorted(recent, key=lambda item: item[1]))
            if not signins or signins[-1] != (staff, at):
                signins.append((staff, at))
            while signins and at - signins[0][1] > 3600:
                signins.popleft()
            history = list(signins)
        limit = self._policy.body.sharing.max_accounts_per_device_hour
        self._raise([rules.many_accounts(device=device, outlet=outlet, at=at, signins=history, limit=limit)])
        self._check_posture(device, at)

    def session_refreshed(self, *, device: str, staff: str, sid: str, outlet: str, expires_at: float) -> None:
        with self._lock:
            self._active[device] = ActiveSession(staff, sid, outlet, expires_at)

    def session_ended(self, *, device: str, sid: str) -> None:
        with self._lock:
            active = self._active.get(device)
            if active is not None and active.sid == sid:
                del self._active[device]
                self._seen.get(active.staff, {}).pop(device, None)

    def active_on(self, device: str, now: float) -> ActiveSession | None:
        active = self._active.get(device)
        return active if active is not None and active.expires_at > now else None

    # --- verify decisions and query reports ---------------------------------------------------

    def on_decision(self, decision: Decision, *, now: float, waybill_outlet: str | None = None) -> None:
        if not decision.allow:
            self._raise([rules.unbound_use(reason=decision.reason, staff=decision.staff, device=decision.device,
                                           outlet=decision.outlet, at=now,
                                           presenting_device=decision.presenting_device,
                                           evidence=decision.evidence)])
            return
        assert decision.staff and decision.device and decision.outlet
        self._activity(decision.staff, decision.device, decision.outlet, now)
        if waybill_outlet is not None:
            self.on_query(staff=decision.staff, device=decision.device, outlet=decision.outlet,
                          waybill_outlet=waybill_outlet, now=now)

    def _activity(self, staff: str, device: str, outlet: str, now: float) -> None:
        sharing = self._policy.body.sharing
        with self._lock:
            seen = self._seen.setdefault(staff, {})
            previous = dict(seen)
            seen[device] = now
        live = self._live.get(device)
        interval = DEFAULT_INTERVAL_S
        if live is not None and isinstance(live.columns.get("interval_s"), int | float):
            interval = float(live.columns["interval_s"])
        self._raise([
            rules.two_devices(staff=staff, device=device, outlet=outlet, at=now, last_seen=previous,
                              window_s=sharing.active_window_s),
            rules.no_heartbeat(staff=staff, device=device, outlet=outlet, at=now,
                               last_heartbeat=live.last_heartbeat if live else None, interval_s=interval,
                               grace_s=sharing.heartbeat_grace_s),
            rules.off_hours(staff=staff, device=device, outlet=outlet, at=now,
                            hours=self._policy.body.binding.hours_for(outlet)),
        ])

    def on_query(self, *, staff: str, device: str | None, outlet: str | None, waybill_outlet: str,
                 now: float) -> None:
        """One waybill query the gateway served, with the outlet the waybill belongs to."""
        policy = self._policy.body.sharing.other_outlet
        other = outlet is not None and waybill_outlet != outlet
        stats = self._baselines.record(staff, other=other, now=now, policy=policy)
        self._raise([rules.other_outlet(staff=staff, device=device, outlet=outlet, at=now,
                                        baseline_share=stats.baseline_share, window_queries=stats.window_queries,
                                        window_other=stats.window_other, policy=policy)])

    # --- device facts --------------------------------------------------------------------------

    def on_finding(self, *, device: str, body: dict[str, Any], now: float) -> None:
        """A device's finding: a remote-control tool or tunnel, or a rule whose response is
        `suspend_binding`, while staff are signed in."""
        active = self.active_on(device, now)
        if active is None:
            return
        rule, category = str(body.get("rule"))[:128], str(body.get("category"))[:32]
        # HQ's own policy decides, not the device's word: a device only reports what it saw.
        actions = self._policy.body.responses.actions_for(rule, str(body.get("severity")), category)
        if "suspend_binding" in actions:
            self._raise([rules.device_finding(staff=active.staff, device=device, outlet=active.outlet, at=now,
                                              rule=rule, category=category)])
        if category in REMOTE_CATEGORIES:
            tool = body.get("process.name") or rule
            self._raise([rules.remote_session(staff=active.staff, device=device, outlet=active.outlet, at=now,
                                              tool=str(tool)[:128])])

    def _check_posture(self, device: str, now: float) -> None:
        active = self.active_on(device, now)
        live = self._live.get(device)
        if active is None or live is None:
            return
        posture = live.columns.get("posture") or {}
        sessions = posture.get("remote_sessions") if isinstance(posture, dict) else None
        if isinstance(sessions, list) and sessions:
            self._raise([rules.remote_session(staff=active.staff, device=device, outlet=active.outlet, at=now,
                                              sessions=sessions)])

    def sweep(self, now: float) -> None:
        """Periodic: inbound remote sessions (from heartbeats) on PCs with staff signed in."""
        with self._lock:
            devices = [device for device, active in self._active.items() if active.expires_at > now]
            for device in [device for device, active in self._active.items() if active.expires_at <= now - 3600]:
                del self._active[device]
        for device in devices:
            self._check_posture(device, now)
