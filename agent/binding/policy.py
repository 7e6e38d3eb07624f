"""The `binding` and `sharing` sections of the signed policy (DESIGN.md "Session binding").

Both sections travel in the one signed policy document: the agent obeys `binding` (idle and
shift-end sign-out, its loopback endpoint), HQ obeys both (token lifetime, proof window, outlet
hours, credential-sharing thresholds and the response to each alert). Parsing lives here, beside
the agent's policy, because HQ validates a body with the same code before signing it.

Errors are ValueError with the field's path; agent.policy turns them into PolicyError.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

SHARING_RULES = (
    "unbound_use",
    "two_devices",
    "no_heartbeat",
    "remote_session",
    "many_accounts",
    "off_hours",
    "other_outlet",
)
RESPONSES = ("alert", "suspend")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class Hours:
    """When an outlet works: ISO weekdays (1 = Monday) and a daily window in the outlet's time zone.

    An end before the start means the shift runs past midnight (a night depot)."""

    days: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)
    start_min: int = 0
    end_min: int = 24 * 60
    utc_offset_min: int = 480

    def is_open(self, at: float) -> bool:
        local = dt.datetime.fromtimestamp(at, dt.timezone(dt.timedelta(minutes=self.utc_offset_min)))
        minute = local.hour * 60 + local.minute
        if self.start_min <= self.end_min:
            return local.isoweekday() in self.days and self.start_min <= minute < self.end_min
        # Past midnight: the early-morning part belongs to the shift that began the day before.
        if minute >= self.start_min:
            return local.isoweekday() in self.days
        previous = (local.isoweekday() - 2) % 7 + 1
        return minute < self.end_min and previous in self.days


@dataclass(frozen=True)
class BindingPolicy:
    token_ttl_s: int = 600
    proof_max_age_s: int = 60
    idle_signout_s: int = 900
    signout_on_lock: bool = True  # a locked console screen ends the staff session
    loopback_port: int = 0
    allowed_origins: tuple[str, ...] = ()
    default_hours: Hours | None = None
    outlet_hours: dict[str, Hours] = field(default_factory=dict)

    def hours_for(self, outlet_id: str) -> Hours | None:
        return self.outlet_hours.get(outlet_id, self.default_hours)


@dataclass(frozen=True)
class OtherOutletPolicy:
    # Learning: the account's own share of other-outlet queries, once it has this many queries
    # over at least this long. Then an hour whose share exceeds max(min_share, multiplier x
    # baseline) with at least min_queries other-outlet queries raises the alert.
    learning_queries: int = 200
    learning_period_s: int = 7 * 86400
    min_queries: int = 50
    multiplier: float = 3.0
    min_share: float = 0.2


@dataclass(frozen=True)
class SharingPolicy:
    active_window_s: int = 600
    heartbeat_grace_s: int = 60
    max_accounts_per_device_hour: int = 3
    realert_s: int = 600
    other_outlet: OtherOutletPolicy = field(default_factory=OtherOutletPolicy)
    responses: dict[str, str] = field(default_factory=lambda: dict.fromkeys(SHARING_RULES, "alert"))

    def response(self, rule: str) -> str:
        return self.responses.get(rule, "alert")


def _fail(where: str, expected: str, value: Any) -> ValueError:
    return ValueError(f"{where}: expected {expected}, got {type(value).__name__} {value!r:.60}")


def _object(value: Any, where: str, known: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, "an object", value)
    for key in value:
        if key not in known:
            raise ValueError(f"{where}.{key}: unknown key; expected one of {sorted(known)}")
    return value


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(where, f"an integer from {low} to {high}", value)
    return value


def _number(value: Any, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise _fail(where, f"a number from {low:g} to {high:g}", value)
    return float(value)


def _minute(value: Any, where: str) -> int:
    if not isinstance(value, str) or not _HHMM.match(value):
        raise _fail(where, 'a time "HH:MM" (24-hour)', value)
    return int(value[:2]) * 60 + int(value[3:])


def parse_hours(value: Any, where: str) -> Hours:
    data = _object(value, where, {"days", "start", "end", "utc_offset_minutes"})
    days: tuple[int, ...] = Hours.days
    if "days" in data:
        raw = data["days"]
        if not isinstance(raw, list) or not raw:
            raise _fail(f"{where}.days", "a non-empty list of ISO weekdays 1-7", raw)
        days = tuple(sorted({_int(day, f"{where}.days[{i}]", 1, 7) for i, day in enumerate(raw)}))
    for key in ("start", "end"):
        if key not in data:
            raise ValueError(f"{where}.{key}: missing; expected a time \"HH:MM\"")
    start = _minute(data["start"], f"{where}.start")
    end = 24 * 60 if data["end"] == "24:00" else _minute(data["end"], f"{where}.end")
    if start == end:
        raise ValueError(f"{where}: start and end are equal; leave the hours out for a 24-hour outlet")
    offset = _int(data.get("utc_offset_minutes", 480), f"{where}.utc_offset_minutes", -720, 840)
    return Hours(days=days, start_min=start, end_min=end, utc_offset_min=offset)


def _origin(value: Any, where: str) -> str:
    """An exact web origin: scheme://host[:port], https, or http only for loopback development."""
    if not isinstance(value, str):
        raise _fail(where, "an origin string like https://waybill.example", value)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise _fail(where, "an origin string like https://waybill.example", value) from None
    if parts.path or parts.query or parts.fragment or not parts.hostname or parts.username:
        raise _fail(where, "an origin (scheme://host[:port]) with no path, query or user", value)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise _fail(where, "an https:// origin (http:// only for localhost)", value)
    # Browsers leave the scheme's default port out of Origin, so the allow-list does too.
    default = {"https": 443, "http": 80}[parts.scheme]
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def parse_binding(value: Any) -> BindingPolicy:
    where = "body.binding"
    data = _object(value, where, {"token_ttl_s", "proof_max_age_s", "idle_signout_s", "signout_on_lock",
                                  "loopback_port", "allowed_origins", "hours"})
    values: dict[str, Any] = {}
    limits = {"token_ttl_s": (2, 3600), "proof_max_age_s": (1, 600), "idle_signout_s": (0, 86400),
              "loopback_port": (0, 65535)}
    for key, (low, high) in limits.items():
        if key in data:
            values[key] = _int(data[key], f"{where}.{key}", low, high)
    if "signout_on_lock" in data:
        if not isinstance(data["signout_on_lock"], bool):
            raise _fail(f"{where}.signout_on_lock", "true or false", data["signout_on_lock"])
        values["signout_on_lock"] = data["signout_on_lock"]
    if "allowed_origins" in data:
        raw = data["allowed_origins"]
        if not isinstance(raw, list):
            raise _fail(f"{where}.allowed_origins", "a list of origins", raw)
        values["allowed_origins"] = tuple(_origin(o, f"{where}.allowed_origins[{i}]") for i, o in enumerate(raw))
    if "hours" in data:
        hours = _object(data["hours"], f"{where}.hours", {"default", "outlets"})
        if "default" in hours:
            values["default_hours"] = parse_hours(hours["default"], f"{where}.hours.default")
        outlets = hours.get("outlets", {})
        if not isinstance(outlets, dict):
            raise _fail(f"{where}.hours.outlets", "an object of outlet id -> hours", outlets)
        values["outlet_hours"] = {
            outlet: parse_hours(spec, f"{where}.hours.outlets.{outlet}") for outlet, spec in outlets.items()
        }
    return BindingPolicy(**values)


def parse_other_outlet(value: Any) -> OtherOutletPolicy:
    where = "body.sharing.other_outlet"
    data = _object(value, where, {"learning_queries", "learning_period_s", "min_queries", "multiplier", "min_share"})
    values: dict[str, Any] = {}
    for key, (low, high) in {"learning_queries": (1, 10**7), "learning_period_s": (0, 365 * 86400),
                             "min_queries": (1, 10**7)}.items():
        if key in data:
            values[key] = _int(data[key], f"{where}.{key}", low, high)
    if "multiplier" in data:
        values["multiplier"] = _number(data["multiplier"], f"{where}.multiplier", 1.0, 1000.0)
    if "min_share" in data:
        values["min_share"] = _number(data["min_share"], f"{where}.min_share", 0.0, 1.0)
    return OtherOutletPolicy(**values)


def parse_sharing(value: Any) -> SharingPolicy:
    where = "body.sharing"
    data = _object(value, where, {"active_window_s", "heartbeat_grace_s", "max_accounts_per_device_hour",
                                  "realert_s", "other_outlet", "responses"})
    values: dict[str, Any] = {}
    limits = {"active_window_s": (1, 86400), "heartbeat_grace_s": (1, 86400),
              "max_accounts_per_device_hour": (1, 1000), "realert_s": (0, 86400)}
    for key, (low, high) in limits.items():
        if key in data:
            values[key] = _int(data[key], f"{where}.{key}", low, high)
    if "other_outlet" in data:
        values["other_outlet"] = parse_other_outlet(data["other_outlet"])
    if "responses" in data:
        raw = _object(data["responses"], f"{where}.responses", set(SHARING_RULES))
        responses = dict.fromkeys(SHARING_RULES, "alert")
        for rule, response in raw.items():
            if response not in RESPONSES:
                raise _fail(f"{where}.responses.{rule}", f"one of {', '.join(RESPONSES)}", response)
            responses[rule] = response
        values["responses"] = responses
    return SharingPolicy(**values)
