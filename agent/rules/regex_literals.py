"""Literal text a regular expression cannot match without, for the rule prefilter.

`CommandLine|re: '://[0-9]{1,3}\\.[0-9]{1,3}'` can only match a value containing `://`, so the
rule need not run for events without it. We read the pattern with CPython's own regex parser
(re._parser, the one `re.compile` uses) and keep runs of literal characters that every match must
contain; alternations give a set of which one must occur. Case-insensitive patterns are skipped:
regex case folding is per character and does not agree with str.casefold on every character
(e.g. U+0130), so a folded literal could wrongly rule an event out. Rules match with RE2, whose
syntax differs from Python's in places: anything Python cannot parse gets no prefilter, and POSIX
classes (`[[:alpha:]]`, which Python reads as a class followed by a literal `]`) are skipped.
"""

from __future__ import annotations

import importlib
import re
import warnings
from typing import Any

try:
    _parser: Any = importlib.import_module("re._parser")
except ImportError:  # pragma: no cover - other Python implementations: no prefilter for regexes
    _parser = None

_REPEATS = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}


def regex_literals(pattern: str) -> frozenset[str] | None:
    """Casefolded texts of which every match of a case-sensitive pattern contains one; None if unknown."""
    if _parser is None or "[:" in pattern:
        return None
    try:
        with warnings.catch_warnings():  # e.g. FutureWarning "possible nested set" is not our business
            warnings.simplefilter("ignore")
            parsed = _parser.parse(pattern, 0)
    except Exception:  # an unparsable pattern (RE2-only syntax) just gets no prefilter
        return None
    if parsed.state.flags & re.IGNORECASE:  # (?i) at the start of the pattern
        return None
    return _sequence(list(parsed))


def _sequence(items: list[tuple[Any, Any]]) -> frozenset[str] | None:
    candidates: list[frozenset[str]] = []
    run: list[str] = []
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            run.append(chr(arg))
            continue
        if run:
            candidates.append(frozenset({"".join(run).casefold()}))
            run = []
        found = _item(name, arg)
        if found:
            candidates.append(found)
    if run:
        candidates.append(frozenset({"".join(run).casefold()}))
    if not candidates:
        return None
    return max(candidates, key=lambda s: (min(len(x) for x in s), -len(s)))


def _item(name: str, arg: Any) -> frozenset[str] | None:
    if name == "SUBPATTERN":
        _group, add_flags, _del_flags, body = arg
        return None if add_flags & re.IGNORECASE else _sequence(list(body))
    if name == "BRANCH":
        _, branches = arg
        sets = [_sequence(list(branch)) for branch in branches]
        if any(s is None for s in sets):
            return None
        return frozenset().union(*(s for s in sets if s is not None))
    if name in _REPEATS:
        low, _high, body = arg
        return _sequence(list(body)) if low >= 1 else None
    return None
