"""RuleSet as a whole: shared across sensor threads, combined with policy rules, cheap to reuse."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from agent.rules import RuleSet, builtin_rules, builtin_texts
from tests.agent.rules.builders import conn, proc, rule_text

EVENTS = [
    proc("/usr/bin/chromedriver", "chromedriver --port=9515"),
    proc(r"C:\Program Files\ToDesk\ToDesk.exe", "ToDesk.exe"),
    proc(r"C:\Windows\System32\notepad.exe", "notepad.exe"),
    proc("/usr/bin/x11vnc", "x11vnc -forever"),
]


def test_one_rule_set_is_safe_to_share_between_threads() -> None:
    rules = builtin_rules()
    expected = [[f.rule for f in rules.match_process(e)] for e in EVENTS]

    def work(round_no: int) -> list[list[str]]:
        return [[f.rule for f in rules.match_process(e)] for e in EVENTS * 50]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(16)))
    assert all(result == expected * 50 for result in results)


def test_rule_set_cannot_be_changed_after_building() -> None:
    rules = builtin_rules()
    with pytest.raises(AttributeError):
        rules.extra = 1  # type: ignore[attr-defined]
    assert isinstance(rules.rules, tuple)


def test_builtin_rules_are_compiled_once() -> None:
    assert builtin_rules() is builtin_rules()


def test_policy_rules_combine_with_the_builtin_pack() -> None:
    policy_rule = rule_text("sel:\n  Image|endswith: '\\WaybillDumper.exe'\ncondition: sel", title="Policy rule")
    rules, errors = RuleSet.from_texts([*builtin_texts(), ("policy/dumper.yml", policy_rule)])
    assert errors == []
    assert len(rules) == len(builtin_rules()) + 1
    assert {f.title for f in rules.match_process(proc(r"C:\x\WaybillDumper.exe", "x"))} == {"Policy rule"}


def test_empty_rule_set_matches_nothing() -> None:
    rules = RuleSet()
    assert len(rules) == 0
    assert rules.match_process(EVENTS[0]) == []
    assert rules.match_connection(conn()) == []
    assert repr(rules) == "RuleSet(0 rules)"
