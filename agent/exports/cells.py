"""Spreadsheet and JSON cell values as the strings a person would see."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

_MAX_INTEGRAL_FLOAT = 1e18


def cell_text(value: Any) -> str:
    """A phone typed into Excel is stored as a float (an 11-digit number ending in ".0"): show it as digits."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < _MAX_INTEGRAL_FLOAT:
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)
