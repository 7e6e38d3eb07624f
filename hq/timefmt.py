"""Durations and times as people type them on the command line, and ISO text for output."""

from __future__ import annotations

import datetime as dt
import re

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(text: str) -> float:
    """'24h', '90m', '3600s', '7d', '2w' or plain seconds; ValueError says what was expected."""
    match = _DURATION.match(text.lower())
    if not match:
        raise ValueError(f"{text!r}: expected a duration like 24h, 90m, 3600s or 7d")
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise ValueError(f"{text!r}: expected a duration above zero")
    return seconds


def parse_since(text: str, *, now: float) -> float:
    """An ISO 8601 time (a time without zone is local time) or a duration back from now."""
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r}: expected an ISO time (2026-01-31T08:00:00+08:00) or a duration (24h)") from None
    if when.tzinfo is None:
        when = when.astimezone()
    return when.timestamp()


def at_utc(ts: float, *, offset_s: float = 0.0, tz: dt.tzinfo = dt.UTC) -> dt.datetime | None:
    """``ts`` (plus ``offset_s``) as an aware datetime; None when no datetime holds it.

    Timestamps come from devices: one event `created` a thousand years out (or NaN) must not
    crash a listing, a console page or the SIEM forwarder for everyone, so no caller converts
    a stored time with `fromtimestamp` directly.
    """
    try:
        return dt.datetime.fromtimestamp(ts + offset_s, tz)
    except (ValueError, OverflowError, OSError):
        return None


def unshowable(ts: float) -> str:
    """How a time no calendar date holds is shown: the raw number, marked."""
    return f"@{ts!r}"


def iso(ts: float | None, *, timespec: str = "seconds") -> str | None:
    if ts is None:
        return None
    when = at_utc(ts)
    if when is None:
        return unshowable(ts)
    return when.isoformat(timespec=timespec).replace("+00:00", "Z")


def strftime_at(ts: float, fmt: str, *, offset_s: float = 0.0, tz: dt.tzinfo = dt.UTC) -> str:
    when = at_utc(ts, offset_s=offset_s, tz=tz)
    return unshowable(ts) if when is None else when.strftime(fmt)
