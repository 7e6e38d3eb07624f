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


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
