"""The JSON form of a compiled rule set: a round trip changes nothing, a damaged document is refused."""

from __future__ import annotations

import copy
import ipaddress
import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.rules import RuleSet, builtin_rules, builtin_texts
from agent.rules.codec import FORMAT, CompiledFormatError, dump_rules, dump_test, load_rules, load_test
from agent.rules.compiled import CompiledRule
from agent.rules.loader import load_text
from agent.rules.matchers import CidrTest, NumberTest
from agent.sensors.observations import NetworkConnection, ProcessStarted
from tests.agent.rules.builders import conn, proc, rule_text
from tests.agent.rules.test_builtin_pack import BENIGN, POSITIVES
from tests.agent.rules.test_sigmahq_rules import CASES as SIGMAHQ_CASES

ROOT = Path(__file__).resolve().parents[3]
SIGMAHQ = Path(__file__).parent / "fixtures" / "sigmahq"
Event = ProcessStarted | NetworkConnection

# One small rule per kind of value test, with events that do and do not match.
KINDS: list[tuple[str, str, list[Event]]] = [
    ("process_creation", "sel:\n  Image|endswith: ['\\a.exe', '\\b.exe']\n  CommandLine|contains|all: [' -x', ' -y']\n"
                         "condition: sel",
     [proc(r"C:\t\A.EXE", "a.exe -x -y"), proc(r"C:\t\a.exe", "a.exe -x"), proc(r"C:\t\c.exe", "c -x -y")]),
    ("process_creation", "sel:\n  CommandLine|cased: 'Run*Now?'\ncondition: sel",
     [proc("/usr/bin/r", "RunItNow!"), proc("/usr/bin/r", "runitnow!")]),
    ("process_creation", "sel:\n  CommandLine|re|i: 'export\\s+\\d{3,}'\nfilter:\n  CommandLine|re|m|s: '^dry.run$'\n"
                         "condition: sel and not filter",
     [proc("/usr/bin/e", "EXPORT  5000"), proc("/usr/bin/e", "dry run\nexport 5000"), proc("/usr/bin/e", "export 5")]),
    ("process_creation", "sel:\n  ProcessId|gte: 4000\n  ParentProcessId|lt: 4001\n  User: null\ncondition: sel",
     [proc("/usr/bin/n", "n", pid=5000), proc("/usr/bin/n", "n", pid=3999), proc("/usr/bin/n", "n", user="x")]),
    ("process_creation", "sel:\n  Company|exists: false\n  Product|exists: true\ncondition: sel",
     [proc("/usr/bin/p", "p", product="P"), proc("/usr/bin/p", "p", product="P", company="C")]),
    ("process_creation", "keywords:\n  - 'frpc'\n  - 4711\ncondition: keywords",
     [proc("/usr/bin/x", "x -c frpc.toml"), proc("/usr/bin/x", "x 4711"), proc("/usr/bin/x", "x")]),
    ("process_creation", "sel:\n  CommandLine|windash|contains: ' -enc '\n"
                         "b64:\n  CommandLine|base64offset|contains: 'Invoke'\ncondition: 1 of them",
     [proc("/usr/bin/x", "x /enc AAA"), proc("/usr/bin/x", "x SW52b2tl"), proc("/usr/bin/x", "x -encode")]),
    ("network_connection", "sel:\n  DestinationIp|cidr: ['10.0.0.0/8', 'fd00::/8']\n  Initiated: 'true'\n"
                           "  DestinationPort|neq: 443\ncondition: sel",
     [conn(remote_ip="10.1.2.3", remote_port=22), conn(remote_ip="10.1.2.3"), conn(remote_ip="fd00::5", remote_port=8),
      conn(remote_ip="203.0.113.9", remote_port=22)]),
    ("network_connection", "sel:\n  Initiated: false\n  DestinationHostname: null\ncondition: sel",
     [conn(direction="inbound"), conn(hostname="x.example")]),
]


def round_trip(ruleset: RuleSet) -> RuleSet:
    """Through real JSON text, as the worker and the cache do it."""
    return RuleSet.from_compiled(json.loads(json.dumps(ruleset.to_compiled(), allow_nan=False)))


def fired(ruleset: RuleSet, event: Event) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    findings = (ruleset.match_connection(event) if isinstance(event, NetworkConnection)
                else ruleset.match_process(event))
    return [(f.rule, f.title, f.severity, f.category, f.fields) for f in findings]


def compiled_rules(texts: list[tuple[str, str]]) -> list[CompiledRule]:
    rules = [rule for name, text in texts for rule in load_text(name, text)[0]]
    assert rules
    return rules


# ---------------------------------------------------------------- round trip


def test_builtin_pack_behaves_identically_after_a_json_round_trip() -> None:
    pack = builtin_rules()
    copy_ = round_trip(pack)
    assert copy_.rules == pack.rules
    events = [event for _, event in POSITIVES] + BENIGN
    assert any(fired(pack, e) for e in events)
    for event in events:
        assert fired(copy_, event) == fired(pack, event), event


def test_every_builtin_rule_keeps_its_tree_and_prefilter_literals() -> None:
    rules = compiled_rules(builtin_texts())
    loaded = load_rules(json.loads(json.dumps(dump_rules(rules))))
    assert [(r.key, r.title, r.severity, r.category, r.logsource, r.file) for r in loaded] == \
        [(r.key, r.title, r.severity, r.category, r.logsource, r.file) for r in rules]
    assert [r.node for r in loaded] == [r.node for r in rules]
    assert [r.literals for r in loaded] == [r.literals for r in rules]


def test_sigmahq_rules_behave_identically_after_a_json_round_trip() -> None:
    original, errors = RuleSet.from_paths([SIGMAHQ])
    assert errors == []
    copy_ = round_trip(original)
    texts = [(str(p), p.read_text(encoding="utf-8")) for p in sorted(SIGMAHQ.glob("*.yml"))]
    rules = compiled_rules(texts)
    assert [r.node for r in load_rules(json.loads(json.dumps(dump_rules(rules))))] == [r.node for r in rules]
    for _, event, _ in SIGMAHQ_CASES:
        assert fired(copy_, event) == fired(original, event)


@pytest.mark.parametrize(("category", "detection", "events"), KINDS, ids=[d.split(":")[0] + str(i)
                                                                          for i, (_, d, _) in enumerate(KINDS)])
def test_every_kind_of_value_test_survives_the_round_trip(category: str, detection: str, events: list[Event]) -> None:
    original, errors = RuleSet.from_texts([("kind.yml", rule_text(detection, category=category))])
    assert errors == []
    copy_ = round_trip(original)
    results = [bool(fired(original, e)) for e in events]
    assert True in results and False in results  # the table really tells matching from not matching
    assert [bool(fired(copy_, e)) for e in events] == results


def test_compiled_document_is_plain_versioned_json() -> None:
    document = builtin_rules().to_compiled()
    assert document["format"] == FORMAT == 1
    assert json.loads(json.dumps(document, allow_nan=False)) == document
    first = document["rules"][0]
    assert set(first) == {"key", "title", "severity", "category", "logsource", "file", "node"}


def test_non_finite_numbers_are_written_as_strings_and_read_back() -> None:
    for number in (math.inf, -math.inf):
        spec = NumberTest("lt", number)
        assert load_test(json.loads(json.dumps(dump_test(spec), allow_nan=False)), "t") == spec
    nan = load_test(json.loads(json.dumps(dump_test(NumberTest("eq", math.nan)), allow_nan=False)), "t")
    assert isinstance(nan, NumberTest) and math.isnan(nan.number)


def test_cidr_networks_are_written_as_text() -> None:
    spec = CidrTest(ipaddress.ip_network("fd00::/8"))
    assert dump_test(spec) == {"test": "cidr", "network": "fd00::/8"}
    assert load_test(dump_test(spec), "t") == spec


def test_rebuilding_from_json_does_not_import_sigma_or_yaml(tmp_path: Path) -> None:
    document = tmp_path / "compiled.json"
    document.write_text(json.dumps(builtin_rules().to_compiled()), encoding="utf-8")
    script = f"""
import json, sys
from agent.rules import RuleSet
from tests.agent.rules.builders import proc
rules = RuleSet.from_compiled(json.loads(open({str(document)!r}, encoding="utf-8").read()))
findings = rules.match_process(proc(r"C:\\Program Files\\ToDesk\\ToDesk.exe", "ToDesk.exe"))
print(len(rules), len(findings), sorted({{m.split(".")[0] for m in sys.modules}} & {{"sigma", "yaml"}}))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(len(builtin_rules())), "1", "[]"]


# ---------------------------------------------------------------- strict validation


def sample() -> dict[str, Any]:
    """A valid document with one process rule (regex, glob, cidr-free) and one network rule (cidr, number)."""
    texts = [("p.yml", rule_text("sel:\n  Image|endswith: '\\x.exe'\n  CommandLine|re: 'a[0-9]+'\n"
                                 "glob:\n  CommandLine|contains: 'b*c'\ncondition: sel or glob")),
             ("n.yml", rule_text("sel:\n  DestinationIp|cidr: 10.0.0.0/8\n  DestinationPort|gt: 80\ncondition: sel",
                                 category="network_connection"))]
    ruleset, errors = RuleSet.from_texts(texts)
    assert errors == []
    return json.loads(json.dumps(ruleset.to_compiled()))


def find_test(document: dict[str, Any], kind: str) -> dict[str, Any]:
    def walk(node: dict[str, Any]) -> dict[str, Any] | None:
        if node["op"] == "leaf":
            return next((t for t in node["tests"] if t["test"] == kind), None)
        children = node["of"] if isinstance(node["of"], list) else [node["of"]]
        return next((found for c in children if (found := walk(c)) is not None), None)

    found = next((t for rule in document["rules"] if (t := walk(rule["node"])) is not None), None)
    assert found is not None, kind
    return found


def first_leaf(document: dict[str, Any]) -> dict[str, Any]:
    node = document["rules"][0]["node"]
    while node["op"] != "leaf":
        node = node["of"][0] if isinstance(node["of"], list) else node["of"]
    return node


Mutation = Callable[[dict[str, Any]], None]
DAMAGE: list[tuple[str, Mutation, str]] = [
    ("newer format", lambda d: d.update(format=2), "format: expected 1, got 2"),
    ("format as boolean", lambda d: d.update(format=True), "format: expected 1"),
    ("no rules key", lambda d: d.pop("rules"), "missing key 'rules'"),
    ("extra top-level key", lambda d: d.update(extra=1), "unexpected key 'extra'"),
    ("rules not a list", lambda d: d.update(rules={}), "rules: expected a list"),
    ("rule not a mapping", lambda d: d["rules"].append("x"), "rules[2]: expected a mapping, got a string"),
    ("unknown severity", lambda d: d["rules"][0].update(severity="urgent"), "rules[0].severity: expected one of"),
    ("unknown category", lambda d: d["rules"][0].update(category="x"), "rules[0].category: expected one of"),
    ("unknown log source", lambda d: d["rules"][1].update(logsource="file_event"), "rules[1].logsource"),
    ("title not a string", lambda d: d["rules"][0].update(title=None), "rules[0].title: expected a string, got null"),
    ("empty key", lambda d: d["rules"][0].update(key=""), "rules[0].key: empty rule key"),
    ("duplicate key", lambda d: d["rules"][1].update(key=d["rules"][0]["key"]), "rules[1].key: duplicate rule key"),
    ("missing node", lambda d: d["rules"][0].pop("node"), "rules[0]: missing key 'node'"),
    ("unknown operator", lambda d: d["rules"][0]["node"].update(op="xor"), "rules[0].node.op: expected one of"),
    ("empty operand list", lambda d: d["rules"][0]["node"].update(of=[]), "expected a non-empty list, got an empty"),
    ("field of another log source", lambda d: first_leaf(d).update(field="DestinationIp"), "field: expected null or"),
    ("no tests", lambda d: first_leaf(d).update(tests=[]), ".tests: expected a non-empty list"),
    ("unknown test", lambda d: first_leaf(d)["tests"][0].update(test="fuzzy"), ".test: expected one of str, glob"),
    ("unknown string kind", lambda d: find_test(d, "str").update(kind="like"), ".kind: expected one of eq"),
    ("needle not a string", lambda d: find_test(d, "str").update(needle=5), ".needle: expected a string, got a number"),
    ("cased not a boolean", lambda d: find_test(d, "str").update(cased="no"), ".cased: expected true or false"),
    ("extra test key", lambda d: find_test(d, "str").update(weight=1), "unexpected key 'weight'"),
    ("broken regex", lambda d: find_test(d, "regex").update(pattern="a(b"), "pattern is not valid RE2"),
    ("broken glob", lambda d: find_test(d, "glob").update(pattern="[x"), "pattern is not valid RE2"),
    ("bad network", lambda d: find_test(d, "cidr").update(network="10.0.0.0/33"), ".network: not an IP network"),
    ("number as text", lambda d: find_test(d, "number").update(number="80"), ".number: expected a number"),
    ("number as boolean", lambda d: find_test(d, "number").update(number=True), ".number: expected a number"),
    ("unknown comparison", lambda d: find_test(d, "number").update(op="approx"), ".op: expected one of eq"),
]


@pytest.mark.parametrize(("damage", "expected"), [(m, e) for _, m, e in DAMAGE], ids=[n for n, _, _ in DAMAGE])
def test_damaged_document_is_refused_with_its_place(damage: Mutation, expected: str) -> None:
    document = sample()
    RuleSet.from_compiled(copy.deepcopy(document))  # the undamaged sample loads
    damage(document)
    with pytest.raises(CompiledFormatError) as caught:
        RuleSet.from_compiled(document)
    assert expected in str(caught.value)


def test_a_document_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(CompiledFormatError, match="compiled rule set: expected a mapping, got a list"):
        RuleSet.from_compiled(["rules"])


def test_format_error_is_a_value_error() -> None:
    assert issubclass(CompiledFormatError, ValueError)
