"""Text made valid UTF-8 before it meets RE2, JSON files or the spool.

Python carries a file-name or command-line byte that is not UTF-8 as a lone surrogate
(`os.fsdecode`). Such a string cannot be encoded, so it would crash whatever writes it; and the
bytes are the attacker's to choose. It becomes the visible text `\\udcff` instead.
"""

from __future__ import annotations

from typing import Any


def utf8_safe(value: str) -> str:
    return value if value.isascii() else value.encode("utf-8", "backslashreplace").decode("utf-8")


def utf8_safe_tree(value: Any) -> Any:
    """`value` with every string (dict keys too) made valid UTF-8; other values as they are."""
    if isinstance(value, str):
        return utf8_safe(value)
    if isinstance(value, dict):
        return {utf8_safe_tree(key): utf8_safe_tree(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [utf8_safe_tree(item) for item in value]
    return value
