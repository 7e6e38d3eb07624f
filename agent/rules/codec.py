"""A compiled rule set as JSON, and back: the form the compile worker answers in and the cache keeps.

    {"format": 1,
     "rules": [{"key": "<id>", "title": "...", "severity": "high", "category": "remote_access",
                "logsource": "process_creation", "file": "builtin/x.yml", "node": NODE}, ...]}

    NODE  = {"op": "all", "of": [NODE, ...]} | {"op": "any", "of": [NODE, ...]} | {"op": "not", "of": NODE}
          | {"op": "leaf", "field": "Image" | null, "tests": [TEST, ...]}
    TEST  = {"test": "str", "kind": "eq|prefix|suffix|contains", "needle": "...", "cased": false}
          | {"test": "glob", "pattern": "<RE2>", "literal": "...", "cased": false}
          | {"test": "regex", "pattern": "<RE2>", "ignorecase": false, "multiline": false, "dotall": false}
          | {"test": "cidr", "network": "10.0.0.0/8"}
          | {"test": "number", "op": "eq|neq|lt|lte|gt|gte", "number": 5 | 2.5 | "Infinity" | "-Infinity" | "NaN"}
          | {"test": "bool", "value": true} | {"test": "null"} | {"test": "exists", "exists": true}

Only the metadata and the simplified tree are stored: predicates, prefilter literals and regex
literals are derived again on load (compiled.py, regex_literals.py), so they cannot disagree with
the tree. Loading is strict, because the input may be a damaged cache file: every key, type and
enumerated value is checked and the first problem raises `CompiledFormatError` naming its place
(`rules[3].node.of[1].tests[0].pattern: ...`); the caller then compiles from the rule texts again.
Nothing here imports pySigma or PyYAML.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Sequence
from typing import Any

from agent.findings import CATEGORIES, SEVERITIES
from agent.rules.compiled import CompiledRule, build_rule
from agent.rules.errors import RuleError
from agent.rules.fields import FIELDS_BY_CATEGORY
from agent.rules.matchers import (
    BoolTest,
    CidrTest,
    ExistsTest,
    GlobTest,
    NullTest,
    NumberTest,
    RegexError,
    RegexTest,
    StrTest,
    ValueTestSpec,
    regex_error_text,
)
from agent.rules.regex_literals import regex_literals
from agent.rules.tree import AllOf, AnyOf, Leaf, Negation, Node

FORMAT = 1

STR_KINDS = ("eq", "prefix", "suffix", "contains")
NUMBER_OPS = ("eq", "neq", "lt", "lte", "gt", "gte")
_NON_FINITE = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}  # JSON has no literal for them
_RULE_KEYS = ("key", "title", "severity", "category", "logsource", "file", "node")


class CompiledFormatError(ValueError):
    """A compiled rule set (or compile-worker answer) that does not follow the format."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


# ---------------------------------------------------------------- rules -> JSON


def dump_rules(rules: Sequence[CompiledRule]) -> dict[str, Any]:
    return {"format": FORMAT, "rules": [dump_rule(rule) for rule in rules]}


def dump_rule(rule: CompiledRule) -> dict[str, Any]:
    return {"key": rule.key, "title": rule.title, "severity": rule.severity, "category": rule.category,
            "logsource": rule.logsource, "file": rule.file, "node": dump_node(rule.node)}


def dump_node(node: Node) -> dict[str, Any]:
    if isinstance(node, Leaf):
        return {"op": "leaf", "field": node.field, "tests": [dump_test(t) for t in node.tests]}
    if isinstance(node, Negation):
        return {"op": "not", "of": dump_node(node.child)}
    return {"op": "all" if isinstance(node, AllOf) else "any", "of": [dump_node(c) for c in node.children]}


def dump_test(test: ValueTestSpec) -> dict[str, Any]:
    if isinstance(test, StrTest):
        return {"test": "str", "kind": test.kind, "needle": test.needle, "cased": test.cased}
    if isinstance(test, GlobTest):
        return {"test": "glob", "pattern": test.pattern, "literal": test.literal, "cased": test.cased}
    if isinstance(test, RegexTest):
        return {"test": "regex", "pattern": test.pattern, "ignorecase": test.ignorecase,
                "multiline": test.multiline, "dotall": test.dotall}
    if isinstance(test, CidrTest):
        return {"test": "cidr", "network": str(test.network)}
    if isinstance(test, NumberTest):
        return {"test": "number", "op": test.op, "number": _dump_number(test.number)}
    if isinstance(test, BoolTest):
        return {"test": "bool", "value": test.value}
    if isinstance(test, NullTest):
        return {"test": "null"}
    return {"test": "exists", "exists": test.exists}


def _dump_number(number: int | float) -> int | float | str:
    if isinstance(number, float) and not math.isfinite(number):
        return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")
    return number


def dump_errors(errors: Sequence[RuleError]) -> list[dict[str, str]]:
    return [{"file": e.file, "field": e.field, "message": e.message} for e in errors]


# ---------------------------------------------------------------- JSON -> rules


def load_rules(data: object) -> list[CompiledRule]:
    """Validate a compiled rule set and rebuild its rules; raises CompiledFormatError."""
    document = expect_mapping(data, "compiled rule set", ("format", "rules"))
    if type(document["format"]) is not int or document["format"] != FORMAT:
        raise CompiledFormatError("format", f"expected {FORMAT}, got {document['format']!r}")
    items = document["rules"]
    if not isinstance(items, list):
        raise CompiledFormatError("rules", f"expected a list, got {_kind(items)}")
    rules: list[CompiledRule] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        rule = load_rule(item, f"rules[{index}]")
        if rule.key in seen:
            raise CompiledFormatError(f"rules[{index}].key", f"duplicate rule key {rule.key!r}")
        seen.add(rule.key)
        rules.append(rule)
    return rules


def load_rule(data: object, where: str) -> CompiledRule:
    rule = expect_mapping(data, where, _RULE_KEYS)
    key = _string(rule, "key", where)
    if not key:
        raise CompiledFormatError(f"{where}.key", "empty rule key")
    severity = _choice(_string(rule, "severity", where), f"{where}.severity", SEVERITIES)
    category = _choice(_string(rule, "category", where), f"{where}.category", CATEGORIES)
    logsource = _choice(_string(rule, "logsource", where), f"{where}.logsource", tuple(FIELDS_BY_CATEGORY))
    try:
        node = load_node(rule["node"], f"{where}.node", FIELDS_BY_CATEGORY[logsource])
        return build_rule(key=key, title=_string(rule, "title", where), severity=severity, category=category,
                          logsource=logsource, file=_string(rule, "file", where), node=node)
    except RegexError as exc:
        raise CompiledFormatError(f"{where}.node", f"pattern is not valid RE2: {regex_error_text(exc)}") from exc
    except RecursionError as exc:
        raise CompiledFormatError(f"{where}.node", "condition tree nested too deeply") from exc


def load_node(data: object, where: str, fields: frozenset[str]) -> Node:
    if not isinstance(data, dict):
        raise CompiledFormatError(where, f"expected a node mapping, got {_kind(data)}")
    op = data.get("op")
    if op == "leaf":
        leaf = expect_mapping(data, where, ("op", "field", "tests"))
        field = leaf["field"]
        if field is not None and (not isinstance(field, str) or field not in fields):
            raise CompiledFormatError(f"{where}.field", f"expected null or one of {', '.join(sorted(fields))}, "
                                                        f"got {field!r}")
        tests = _nonempty_list(leaf, "tests", where)
        return Leaf(field, tuple(load_test(t, f"{where}.tests[{i}]") for i, t in enumerate(tests)))
    if op == "not":
        return Negation(load_node(expect_mapping(data, where, ("op", "of"))["of"], f"{where}.of", fields))
    if op in ("all", "any"):
        children = _nonempty_list(expect_mapping(data, where, ("op", "of")), "of", where)
        nodes = tuple(load_node(c, f"{where}.of[{i}]", fields) for i, c in enumerate(children))
        return AllOf(nodes) if op == "all" else AnyOf(nodes)
    raise CompiledFormatError(f"{where}.op", f"expected one of all, any, not, leaf, got {op!r}")


def load_test(data: object, where: str) -> ValueTestSpec:
    if not isinstance(data, dict):
        raise CompiledFormatError(where, f"expected a value-test mapping, got {_kind(data)}")
    kind = data.get("test")
    loader = _TEST_LOADERS.get(kind) if isinstance(kind, str) else None
    if loader is None:
        raise CompiledFormatError(f"{where}.test", f"expected one of {', '.join(_TEST_LOADERS)}, got {kind!r}")
    return loader(data, where)


def _str_test(data: dict[str, Any], where: str) -> StrTest:
    expect_mapping(data, where, ("test", "kind", "needle", "cased"))
    kind = _choice(_string(data, "kind", where), f"{where}.kind", STR_KINDS)
    return StrTest(kind, _string(data, "needle", where), _boolean(data, "cased", where))


def _glob_test(data: dict[str, Any], where: str) -> GlobTest:
    expect_mapping(data, where, ("test", "pattern", "literal", "cased"))
    return GlobTest(_string(data, "pattern", where), _string(data, "literal", where), _boolean(data, "cased", where))


def _regex_test(data: dict[str, Any], where: str) -> RegexTest:
    expect_mapping(data, where, ("test", "pattern", "ignorecase", "multiline", "dotall"))
    pattern, ignorecase = _string(data, "pattern", where), _boolean(data, "ignorecase", where)
    # The literals are derived here exactly as the compiler derives them (compiler.regex_test).
    return RegexTest(pattern, ignorecase, _boolean(data, "multiline", where), _boolean(data, "dotall", where),
                     None if ignorecase else regex_literals(pattern))


def _cidr_test(data: dict[str, Any], where: str) -> CidrTest:
    expect_mapping(data, where, ("test", "network"))
    text = _string(data, "network", where)
    try:
        return CidrTest(ipaddress.ip_network(text))
    except ValueError as exc:
        raise CompiledFormatError(f"{where}.network", f"not an IP network: {exc}") from exc


def _number_test(data: dict[str, Any], where: str) -> NumberTest:
    expect_mapping(data, where, ("test", "op", "number"))
    op = _choice(_string(data, "op", where), f"{where}.op", NUMBER_OPS)
    number = data["number"]
    if isinstance(number, str) and number in _NON_FINITE:
        return NumberTest(op, _NON_FINITE[number])
    if type(number) not in (int, float):  # bool is an int subclass, and is not a number here
        raise CompiledFormatError(f"{where}.number", f"expected a number, got {_kind(number)}")
    return NumberTest(op, number)


def _bool_test(data: dict[str, Any], where: str) -> BoolTest:
    expect_mapping(data, where, ("test", "value"))
    return BoolTest(_boolean(data, "value", where))


def _null_test(data: dict[str, Any], where: str) -> NullTest:
    expect_mapping(data, where, ("test",))
    return NullTest()


def _exists_test(data: dict[str, Any], where: str) -> ExistsTest:
    expect_mapping(data, where, ("test", "exists"))
    return ExistsTest(_boolean(data, "exists", where))


_TEST_LOADERS: dict[str, Callable[[dict[str, Any], str], ValueTestSpec]] = {
    "str": _str_test, "glob": _glob_test, "regex": _regex_test, "cidr": _cidr_test, "number": _number_test,
    "bool": _bool_test, "null": _null_test, "exists": _exists_test,
}


def load_errors(data: object, where: str) -> list[RuleError]:
    if not isinstance(data, list):
        raise CompiledFormatError(where, f"expected a list, got {_kind(data)}")
    errors = []
    for index, item in enumerate(data):
        place = f"{where}[{index}]"
        error = expect_mapping(item, place, ("file", "field", "message"))
        errors.append(RuleError(_string(error, "file", place), _string(error, "field", place),
                                _string(error, "message", place)))
    return errors


# ---------------------------------------------------------------- checks


def expect_mapping(data: object, where: str, keys: Sequence[str]) -> dict[str, Any]:
    """`data` must be a mapping with exactly these keys: an extra key is as suspect as a missing one."""
    if not isinstance(data, dict):
        raise CompiledFormatError(where, f"expected a mapping, got {_kind(data)}")
    missing = [k for k in keys if k not in data]
    if missing:
        raise CompiledFormatError(where, f"missing key {missing[0]!r}")
    extra = sorted(str(k) for k in data if k not in keys)
    if extra:
        raise CompiledFormatError(where, f"unexpected key {extra[0]!r}")
    return data


def _string(data: dict[str, Any], key: str, where: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise CompiledFormatError(f"{where}.{key}", f"expected a string, got {_kind(value)}")
    return value


def _boolean(data: dict[str, Any], key: str, where: str) -> bool:
    value = data[key]
    if not isinstance(value, bool):
        raise CompiledFormatError(f"{where}.{key}", f"expected true or false, got {_kind(value)}")
    return value


def _nonempty_list(data: dict[str, Any], key: str, where: str) -> list[Any]:
    value = data[key]
    if not isinstance(value, list) or not value:
        raise CompiledFormatError(f"{where}.{key}", f"expected a non-empty list, got {_kind(value)}")
    return value


def _choice(value: str, where: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise CompiledFormatError(where, f"expected one of {', '.join(choices)}, got {value!r}")
    return value


def _kind(value: object) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
             int: "a number", float: "a number"}
    if isinstance(value, list) and not value:
        return "an empty list"
    return names.get(type(value), type(value).__name__)
