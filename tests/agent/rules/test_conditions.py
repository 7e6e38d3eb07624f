"""Condition forms: and/or/not, precedence, parentheses, `1 of`/`all of` patterns and `them`."""

from __future__ import annotations

import pytest

from tests.agent.rules.builders import hits, proc

DETECTIONS = """\
sel_a:
  CommandLine|contains: 'alpha'
sel_b:
  CommandLine|contains: 'beta'
filter_c:
  CommandLine|contains: 'gamma'
_private:
  CommandLine|contains: 'delta'
"""


def evaluate(condition: str, line: str) -> bool:
    return hits(DETECTIONS + f"condition: {condition}", proc(r"C:\x\tool.exe", line))


@pytest.mark.parametrize(
    ("condition", "line", "expected"),
    [
        ("sel_a and sel_b", "alpha beta", True),
        ("sel_a and sel_b", "alpha", False),
        ("sel_a or sel_b", "beta", True),
        ("sel_a or sel_b", "gamma", False),
        ("sel_a and not filter_c", "alpha", True),
        ("sel_a and not filter_c", "alpha gamma", False),
        ("not sel_a", "beta", True),
        ("not sel_a", "alpha", False),
        # precedence: not > and > or
        ("sel_a or sel_b and filter_c", "alpha", True),
        ("sel_a or sel_b and filter_c", "beta", False),
        ("(sel_a or sel_b) and filter_c", "alpha", False),
        ("(sel_a or sel_b) and filter_c", "alpha gamma", True),
        ("not sel_a and sel_b", "beta", True),
        ("not (sel_a and sel_b)", "alpha beta", False),
        ("not (sel_a and sel_b)", "alpha", True),
        # x of pattern
        ("1 of sel_*", "beta", True),
        ("1 of sel_*", "gamma", False),
        ("all of sel_*", "alpha beta", True),
        ("all of sel_*", "alpha", False),
        ("any of sel_*", "alpha", True),
        ("1 of sel_* and not 1 of filter_*", "alpha", True),
        ("1 of sel_* and not 1 of filter_*", "alpha gamma", False),
        # them: every identifier except those starting with an underscore
        ("1 of them", "gamma", True),
        ("1 of them", "delta", False),
        ("all of them", "alpha beta gamma", True),
        ("all of them", "alpha beta", False),
        ("_private", "delta", True),
        ("1 of _priv*", "delta", True),
    ],
)
def test_condition_forms(condition: str, line: str, expected: bool) -> None:
    assert evaluate(condition, line) is expected


def test_a_list_of_conditions_is_an_or() -> None:
    detection = DETECTIONS + "condition:\n  - sel_a and sel_b\n  - filter_c"
    assert hits(detection, proc(r"C:\x\t.exe", "gamma"))
    assert hits(detection, proc(r"C:\x\t.exe", "alpha beta"))
    assert not hits(detection, proc(r"C:\x\t.exe", "alpha"))


def test_a_map_is_an_and_and_a_list_of_maps_an_or() -> None:
    map_and = "sel:\n  Image|endswith: '\\tool.exe'\n  CommandLine|contains: 'x'\ncondition: sel"
    list_or = "sel:\n  - Image|endswith: '\\tool.exe'\n  - CommandLine|contains: 'x'\ncondition: sel"
    assert not hits(map_and, proc(r"C:\a\tool.exe", "y"))
    assert hits(list_or, proc(r"C:\a\tool.exe", "y"))
    assert hits(list_or, proc(r"C:\a\other.exe", "x"))
    assert not hits(list_or, proc(r"C:\a\other.exe", "y"))


def test_a_deeply_nested_condition_still_evaluates() -> None:
    condition = "(" * 20 + "sel_a" + ")" * 20 + " and not ((filter_c))"
    assert evaluate(condition, "alpha")
    assert not evaluate(condition, "alpha gamma")
