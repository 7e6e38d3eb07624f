"""Hypothesis: the loader turns any input into rules or located errors, never an exception; the literal
prefilter never changes which rules match; the compiled JSON form changes nothing."""

from __future__ import annotations

import json
import string
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.rules import RuleSet
from agent.rules.codec import dump_rules, load_rules
from agent.rules.compiled import CompiledRule
from agent.rules.fields import make_record, process_fields
from agent.rules.loader import load_text
from tests.agent.rules.builders import proc

FIELDS = ["Image", "CommandLine", "ParentImage", "User", "OriginalFileName", "Product", "ProcessId", "LogonId", ""]
MODIFIERS = ["contains", "startswith", "endswith", "all", "re", "i", "m", "s", "windash", "cidr", "base64",
             "base64offset", "wide", "cased", "exists", "neq", "gt", "lte", "expand", "fieldref", "hour", "bogus"]
# Characters whose case folding is unusual, so the casefold-based prefilter is really exercised.
TRICKY = "İıßẞſKΣσς"
TEXT = st.text(alphabet=string.ascii_letters + string.digits + " -/\\.*?:_" + TRICKY, max_size=12)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.floats(allow_nan=True), TEXT)
keys = st.builds(lambda f, mods: "|".join([f, *mods]), st.sampled_from(FIELDS),
                 st.lists(st.sampled_from(MODIFIERS), max_size=3))
values = st.one_of(scalars, st.lists(scalars, max_size=4))
search = st.one_of(st.dictionaries(keys, values, max_size=4), st.lists(scalars, max_size=3),
                   st.lists(st.dictionaries(keys, values, min_size=1, max_size=3), max_size=3), scalars)
condition_atoms = st.sampled_from(["sel", "sel_a", "filter", "1 of sel*", "all of them", "1 of them", "nope",
                                   "not sel", "(sel", ")", "and", "or", "| count() > 3", "1 of x_*"])
conditions = st.one_of(st.lists(condition_atoms, min_size=1, max_size=6).map(" ".join),
                       st.lists(st.lists(condition_atoms, min_size=1, max_size=3).map(" ".join), max_size=2), scalars)


# Mostly well-formed searches and conditions, so that many documents get past validation and are
# compiled and matched; the odd shapes above still come in through `search` and `conditions`.
good_values = st.one_of(TEXT, st.lists(TEXT, min_size=1, max_size=3), st.integers(0, 70000))
good_keys = st.builds(lambda f, mods: "|".join([f, *mods]), st.sampled_from(FIELDS[:-2]),
                      st.lists(st.sampled_from(["contains", "startswith", "endswith", "all", "windash", "cased"]),
                               max_size=2, unique=True))
good_search = st.one_of(st.dictionaries(good_keys, good_values, min_size=1, max_size=3),
                        st.lists(TEXT.filter(bool), min_size=1, max_size=3))
good_conditions = st.sampled_from(["sel", "sel and not filter", "1 of sel*", "all of them", "1 of them",
                                   "sel or (sel_a and not filter)", "not filter"])


def detections() -> st.SearchStrategy[dict[str, Any]]:
    names = st.sampled_from(["sel", "sel_a", "filter", "_hidden", "timeframe"])
    odd = st.builds(lambda found, cond: {**found, "condition": cond},
                    st.dictionaries(names, search, max_size=3), conditions)
    good = st.builds(lambda found, cond: {**found, "condition": cond},
                     st.fixed_dictionaries({"sel": good_search, "sel_a": good_search, "filter": good_search}),
                     good_conditions)
    return st.one_of(odd, good, good)


def documents() -> st.SearchStrategy[Any]:
    meta = st.fixed_dictionaries(
        {},
        optional={
            "title": st.one_of(TEXT, scalars),
            "id": st.one_of(st.uuids().map(str), scalars),
            "level": st.one_of(st.sampled_from(["low", "medium", "high", "critical", "informational"]), scalars),
            "status": st.one_of(st.sampled_from(["test", "stable", "unsupported"]), scalars),
            "tags": st.one_of(st.lists(st.sampled_from(["tg.category.automation", "tg.category.x", "attack.t1219",
                                                        "bad", "attack.t1572"]), max_size=3), scalars),
            "logsource": st.one_of(st.fixed_dictionaries(
                {"category": st.sampled_from(["process_creation", "network_connection", "file_event"])},
                optional={"product": st.sampled_from(["windows", "linux", "zeek"]), "service": TEXT}), scalars),
            "detection": st.one_of(detections(), scalars, st.lists(scalars, max_size=2)),
            "correlation": st.dictionaries(TEXT, scalars, max_size=2),
            "related": st.one_of(st.lists(st.dictionaries(st.sampled_from(["id", "type"]), scalars)), scalars),
            "date": st.one_of(st.dates(), TEXT),
        },
    )
    return st.one_of(meta, scalars, st.lists(scalars, max_size=3))


def assert_clean(name: str, text: str) -> None:
    _, errors = load_text(name, text)
    for error in errors:
        assert error.file.startswith(name)
        assert error.field and error.message
        assert "internal error" not in error.message, error


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_random_text_never_crashes_the_loader(text: str) -> None:
    assert_clean("random.yml", text)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_random_rule_documents_give_rules_or_located_errors(document: Any) -> None:
    assert_clean("doc.yml", yaml.safe_dump(document, allow_unicode=True))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(detections(), st.sampled_from(["process_creation", "network_connection"]))
def test_random_detections_never_crash_loading_or_matching(detection: dict[str, Any], category: str) -> None:
    document = {"title": "fuzz", "logsource": {"category": category}, "detection": detection}
    text = yaml.safe_dump(document, allow_unicode=True)
    assert_clean("det.yml", text)
    rules, _ = RuleSet.from_texts([("det.yml", text)])
    rules.match_process(proc(r"C:\Tools\x.exe", "x -a /b 10.0.0.1 İstanbul STRASSE"))
    rules.match_process(proc("/usr/bin/x", ()))


# ---------------------------------------------------------------- prefilter soundness

RULE_VALUE = st.text(alphabet="abcxyz-/\\*?. " + TRICKY, min_size=1, max_size=6)
RULE_KEY = st.sampled_from(["CommandLine", "CommandLine|contains", "CommandLine|startswith", "CommandLine|endswith",
                            "CommandLine|contains|all", "CommandLine|cased", "CommandLine|contains|cased",
                            "CommandLine|windash|contains", "Image|endswith", "CommandLine|re",
                            "CommandLine|re|i", "User"])
EVENT_TEXT = st.text(alphabet="abcxyz-/\\. –" + TRICKY, max_size=20)


def regex_safe(key: str, value: str) -> str:
    # Keep the generated regexes valid: escape everything but a few regex operators.
    if "|re" not in key:
        return value
    return "".join(c if c in ".?*" else "\\" + c if not c.isalnum() else c for c in value).lstrip("*?") or "a"


@st.composite
def fuzz_rule(draw: st.DrawFn) -> str:
    selections = {}
    for name in ("sel_a", "sel_b", "filter"):
        items = draw(st.dictionaries(RULE_KEY, st.lists(RULE_VALUE, min_size=1, max_size=3), min_size=1, max_size=2))
        selections[name] = {k: [regex_safe(k, v) for v in vs] for k, vs in items.items()}
    condition = draw(st.sampled_from(["sel_a", "sel_a and sel_b", "sel_a or sel_b", "1 of sel_* and not filter",
                                      "all of sel_*", "not filter", "sel_a and not (sel_b or filter)"]))
    return yaml.safe_dump({"title": "p", "logsource": {"category": "process_creation"},
                           "detection": {**selections, "condition": condition}}, allow_unicode=True)


def _filler() -> list[Any]:
    """Enough extra literals that the rule set buckets them by trigram instead of checking each."""
    texts = [yaml.safe_dump({"title": f"filler {i}", "logsource": {"category": "process_creation"},
                             "detection": {"sel": {"Image|endswith": [f"\\tool{i}x{j}.exe" for j in range(4)],
                                                   "CommandLine|contains": [f"-opt{i}", "ab" + "cx"[i % 2]]},
                                           "condition": "sel"}})
             for i in range(150)]
    return [rule for i, text in enumerate(texts) for rule in load_text(f"filler{i}.yml", text)[0]]


FILLER = _filler()


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(fuzz_rule(), min_size=1, max_size=4), EVENT_TEXT, EVENT_TEXT, EVENT_TEXT)
def test_prefilter_never_changes_the_result(texts: list[str], line: str, image: str, user: str) -> None:
    compiled = []
    for index, text in enumerate(texts):
        rules, _ = load_text(f"r{index}.yml", text)
        compiled.extend(rules)
    event = proc("C:\\" + image, line, user=user or None)
    record = make_record(process_fields(event))
    for rules in (compiled, compiled + FILLER):  # few literals: checked one by one; many: trigram buckets
        expected = [r.key for r in rules if r.predicate(record)]
        assert [f.rule for f in RuleSet(rules).match_process(event)] == expected


def test_trigram_buckets_find_literals_anywhere_in_the_event() -> None:
    event = proc(r"C:\Tools\tool7x2.exe", "tool7x2.exe -opt7 ab")
    findings = RuleSet(FILLER).match_process(event)
    assert [f.title for f in findings] == ["filler 7"]


# ---------------------------------------------------------------- compiled JSON round trip


def _round_trip(rules: list[CompiledRule]) -> list[CompiledRule]:
    return load_rules(json.loads(json.dumps(dump_rules(rules), allow_nan=False)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(detections(), st.sampled_from(["process_creation", "network_connection"]))
def test_any_compiled_rule_survives_the_json_round_trip_unchanged(detection: dict[str, Any], category: str) -> None:
    text = yaml.safe_dump({"title": "fuzz", "logsource": {"category": category}, "detection": detection},
                          allow_unicode=True)
    rules, _ = load_text("det.yml", text)
    copies = _round_trip(rules)
    assert [r.node for r in copies] == [r.node for r in rules]
    assert [r.literals for r in copies] == [r.literals for r in rules]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(fuzz_rule(), min_size=1, max_size=4), EVENT_TEXT, EVENT_TEXT, EVENT_TEXT)
def test_round_tripped_rules_match_exactly_the_same_events(texts: list[str], line: str, image: str, user: str) -> None:
    rules = [rule for index, text in enumerate(texts) for rule in load_text(f"r{index}.yml", text)[0]]
    event = proc("C:\\" + image, line, user=user or None)
    expected = [f.rule for f in RuleSet(rules).match_process(event)]
    assert [f.rule for f in RuleSet(_round_trip(rules)).match_process(event)] == expected
