"""The credential-sharing rules: each a small pure function from facts to an alert (or None).

A rule never does I/O and never decides the response: the tracker gathers the facts, the
responder applies the policy's answer (alert only, or suspend). Evidence names staff, devices,
outlets, counts and times, never a URL or query (they can carry waybill numbers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.binding.policy import Hours, OtherOutletPolicy

UNBOUND_REASONS = frozenset({"missing_token", "missing_proof", "malformed_proof", "wrong_device", "bad_proof",
                             "wrong_staff"})


@dataclass(frozen=True)
class SharingAlert:
    rule: str
    staff: str | None
    device: str | None
    outlet: str | None
    at: float
    evidence: dict[str, Any] = field(default_factory=dict)
    # What makes a repeat of this alert new information (a different tool, a different reason):
    # alerts are folded per rule, staff, device and facet within the policy's realert time.
    facet: str = ""
    # Set when the response is decided elsewhere (a detection rule's `suspend_binding` in policy's
    # `responses`), not by `sharing.responses`.
    response: str | None = None


def unbound_use(*, reason: str, staff: str | None, device: str | None, outlet: str | None, at: float,
                presenting_device: str | None = None, evidence: Mapping[str, Any] | None = None) -> SharingAlert | None:
    """A token or account used without a valid proof from its bound PC (or from another PC)."""
    if reason not in UNBOUND_REASONS or (staff is None and device is None):
        return None
    if reason == "missing_token" and staff is None:
        return None  # no account named: nothing to attribute
    facts = {"reason": reason, "bound_device": device, **(evidence or {})}
    if presenting_device is not None:
        facts["presenting_device"] = presenting_device
    return SharingAlert("unbound_use", staff, device, outlet, at, facts, facet=reason)


def two_devices(*, staff: str, device: str, outlet: str, at: float, last_seen: Mapping[str, float],
                window_s: float) -> SharingAlert | None:
    """The same staff active on another PC within the window (``last_seen``: device -> time, live sessions only)."""
    others = {other: seen for other, seen in last_seen.items() if other != device and at - seen <= window_s}
    if not others:
        return None
    return SharingAlert("two_devices", staff, device, outlet, at,
                        {"devices": sorted([device, *others]), "other_last_seen": others, "window_s": window_s})


def no_heartbeat(*, staff: str, device: str, outlet: str, at: float, last_heartbeat: float | None,
                 interval_s: float, grace_s: float) -> SharingAlert | None:
    """Business activity while the bound PC itself has gone quiet (its agent stopped or cut off)."""
    if last_heartbeat is not None and at - last_heartbeat <= interval_s + grace_s:
        return None
    return SharingAlert("no_heartbeat", staff, device, outlet, at,
                        {"last_heartbeat": last_heartbeat, "allowed_gap_s": interval_s + grace_s})


def remote_session(*, staff: str, device: str, outlet: str | None, at: float,
                   sessions: Sequence[Any] = (), tool: str | None = None) -> SharingAlert | None:
    """A remote-control tool or an inbound remote session on the PC while staff are signed in."""
    if not sessions and tool is None:
        return None
    evidence: dict[str, Any] = {}
    if sessions:
        evidence["remote_sessions"] = len(sessions)
        evidence["remote_hosts"] = sorted({str(s.get("host")) for s in sessions if isinstance(s, dict)
                                           and s.get("host")})[:10]
    if tool is not None:
        evidence["tool"] = tool
    return SharingAlert("remote_session", staff, device, outlet, at, evidence,
                        facet=f"tool:{tool}" if tool is not None else "sessions")


def device_finding(*, staff: str, device: str, outlet: str, at: float, rule: str,
                   category: str) -> SharingAlert:
    """A detection rule whose policy response is `suspend_binding` fired on the PC staff are signed in on."""
    return SharingAlert("device_finding", staff, device, outlet, at, {"finding_rule": rule, "category": category},
                        facet=f"rule:{rule}", response="suspend")


def many_accounts(*, device: str, outlet: str, at: float, signins: Sequence[tuple[str, float]],
                  limit: int) -> SharingAlert | None:
    """More than ``limit`` different staff signed in on one PC within the hour before ``at``."""
    accounts = sorted({staff for staff, when in signins if at - when <= 3600})
    if len(accounts) <= limit:
        return None
    return SharingAlert("many_accounts", None, device, outlet, at, {"accounts": accounts, "limit": limit})


def off_hours(*, staff: str, device: str, outlet: str, at: float, hours: Hours | None) -> SharingAlert | None:
    if hours is None or hours.is_open(at):
        return None
    return SharingAlert("off_hours", staff, device, outlet, at,
                        {"days": list(hours.days), "start_min": hours.start_min, "end_min": hours.end_min,
                         "utc_offset_min": hours.utc_offset_min})


def other_outlet(*, staff: str, device: str | None, outlet: str | None, at: float, baseline_share: float | None,
                 window_queries: int, window_other: int, policy: OtherOutletPolicy) -> SharingAlert | None:
    """Other-outlet waybill queries in the last hour above the account's own learned share."""
    if baseline_share is None or window_queries == 0 or window_other < policy.min_queries:
        return None
    threshold = max(policy.min_share, baseline_share * policy.multiplier)
    share = window_other / window_queries
    if share <= threshold:
        return None
    return SharingAlert("other_outlet", staff, device, outlet, at,
                        {"window_s": 3600, "queries": window_queries, "other_outlet_queries": window_other,
                         "share": round(share, 4), "baseline_share": round(baseline_share, 4),
                         "threshold": round(threshold, 4)})
