"""pySigma's parsed condition tree -> our own small tree -> one predicate per rule.

pySigma parses the YAML, applies the modifiers and resolves the condition (`and`/`or`/`not`,
parentheses, `1 of selection_*`, `all of them` ...) into a tree of ConditionAND/OR/NOT whose
leaves are field = value expressions. We translate that tree once, merge the OR-ed values of one
field into a single leaf (so `Image|endswith: [a, b, c]` costs one `str.endswith(tuple)`), order
AND operands cheapest first, and close over precompiled regexes and casefolded needles: nothing
is parsed or lowercased per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SigmaType,
    SpecialChars,
)

from agent.rules.errors import RuleRejected
from agent.rules.fields import Record
from agent.rules.matchers import (
    BoolTest,
    CidrTest,
    ExistsTest,
    GlobTest,
    NullTest,
    NumberTest,
    Predicate,
    RegexError,
    RegexTest,
    StrTest,
    ValueTestSpec,
    compile_leaf,
    compile_regex,
    cost_of,
    escape_regex,
    literals_of,
    regex_error_text,
)
from agent.rules.regex_literals import regex_literals


@dataclass(frozen=True)
class Leaf:
    field: str | None  # None: keyword, searched in every field
    tests: tuple[ValueTestSpec, ...]  # OR-ed


@dataclass(frozen=True)
class AllOf:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Negation:
    child: Node


Node = Leaf | AllOf | AnyOf | Negation

_COMPARE_OPS = {
    CompareOperators.LT: "lt",
    CompareOperators.LTE: "lte",
    CompareOperators.GT: "gt",
    CompareOperators.GTE: "gte",
    CompareOperators.NEQ: "neq",
}


# ---------------------------------------------------------------- pySigma tree -> Node


def translate(condition: object) -> Node:
    """Translate one postprocessed pySigma condition tree."""
    if isinstance(condition, ConditionAND):
        return AllOf(tuple(translate(arg) for arg in condition.args))
    if isinstance(condition, ConditionOR):
        return AnyOf(tuple(translate(arg) for arg in condition.args))
    if isinstance(condition, ConditionNOT):
        return Negation(translate(condition.args[0]))
    if isinstance(condition, ConditionFieldEqualsValueExpression):
        return _value_node(condition.field, condition.value)
    if isinstance(condition, ConditionValueExpression):
        return _value_node(None, condition.value)
    raise RuleRejected("detection.condition", f"unsupported condition element {type(condition).__name__}")


def _value_node(field: str | None, value: SigmaType) -> Node:
    if isinstance(value, SigmaExpansion):  # windash / base64offset variants: always OR-ed
        return AnyOf(tuple(_value_node(field, v) for v in value.values))
    return Leaf(field, (value_test(field, value),))


def value_test(field: str | None, value: SigmaType) -> ValueTestSpec:
    what = f"field {field!r}" if field else "keyword"
    if isinstance(value, SigmaString):
        return string_test(value, cased=isinstance(value, SigmaCasedString), keyword=field is None)
    if isinstance(value, SigmaRegularExpression):
        return regex_test(str(value.regexp), value.flags)
    if isinstance(value, SigmaCIDRExpression):
        return CidrTest(value.network)
    if isinstance(value, SigmaTimestampPart):
        raise RuleRejected("detection", f"{what}: timestamp modifiers (minute, hour, day ...) are not supported")
    if isinstance(value, SigmaNumber):
        if field is None:  # a keyword number is searched as text, like any keyword
            return StrTest("contains", str(value.number))
        return NumberTest("eq", value.number)
    if isinstance(value, SigmaCompareExpression):
        return NumberTest(_COMPARE_OPS.get(value.op, "eq"), value.number.number)
    if isinstance(value, SigmaBool):
        return BoolTest(bool(value))
    if isinstance(value, SigmaNull):
        return NullTest()
    if isinstance(value, SigmaExists):
        return ExistsTest(bool(value))
    raise RuleRejected("detection", f"{what}: value type {type(value).__name__} is not supported by this engine")


def regex_test(pattern: str, flags: set[SigmaRegularExpressionFlag]) -> RegexTest:
    ignorecase = SigmaRegularExpressionFlag.IGNORECASE in flags
    try:
        compiled = compile_regex(pattern, ignorecase=ignorecase,
                                 multiline=SigmaRegularExpressionFlag.MULTILINE in flags,
                                 dotall=SigmaRegularExpressionFlag.DOTALL in flags)
    except RegexError as exc:
        raise RuleRejected("detection", f"invalid regular expression {pattern!r}: {regex_error_text(exc)}") from exc
    return RegexTest(compiled, None if ignorecase else regex_literals(pattern))


def string_test(value: SigmaString, *, cased: bool, keyword: bool = False) -> ValueTestSpec:
    parts = list(value.s)
    if any(isinstance(p, Placeholder) for p in parts):
        raise RuleRejected("detection", "placeholders (%name%) need the expand modifier, which is not supported")
    if keyword:  # keywords are searched inside the values, as a full-text search would
        if not parts or parts[0] is not SpecialChars.WILDCARD_MULTI:
            parts.insert(0, SpecialChars.WILDCARD_MULTI)
        if parts[-1] is not SpecialChars.WILDCARD_MULTI:
            parts.append(SpecialChars.WILDCARD_MULTI)
    fold = (lambda s: s) if cased else str.casefold
    lead = bool(parts) and parts[0] is SpecialChars.WILDCARD_MULTI
    trail = len(parts) > int(lead) and parts[-1] is SpecialChars.WILDCARD_MULTI
    middle = parts[int(lead) : len(parts) - int(trail)]
    if all(isinstance(p, str) for p in middle):
        text = fold("".join(str(p) for p in middle))
        kind = {(False, False): "eq", (True, False): "suffix", (False, True): "prefix"}.get((lead, trail), "contains")
        return StrTest(kind, text, cased)
    wildcards = {SpecialChars.WILDCARD_MULTI: ".*", SpecialChars.WILDCARD_SINGLE: "."}
    pattern = "".join(wildcards[p] if isinstance(p, SpecialChars) else escape_regex(fold(str(p))) for p in parts)
    runs = [str(p) for p in parts if isinstance(p, str)]
    literal = max(runs, key=len).casefold() if runs else ""
    return GlobTest(compile_regex(pattern, dotall=True), literal, cased)


# ---------------------------------------------------------------- simplification


def simplify(node: Node) -> Node:
    """Flatten nested AND/OR, merge OR-ed leaves of one field, order AND operands by cost."""
    if isinstance(node, Leaf):
        return node
    if isinstance(node, Negation):
        return Negation(simplify(node.child))
    children = [simplify(c) for c in node.children]
    if isinstance(node, AllOf):
        flat = [g for c in children for g in (c.children if isinstance(c, AllOf) else (c,))]
        flat.sort(key=cost)
        return flat[0] if len(flat) == 1 else AllOf(tuple(flat))
    flat = [g for c in children for g in (c.children if isinstance(c, AnyOf) else (c,))]
    merged = _merge_leaves(flat)
    return merged[0] if len(merged) == 1 else AnyOf(tuple(merged))


def _merge_leaves(nodes: Sequence[Node]) -> list[Node]:
    by_field: dict[str | None, list[ValueTestSpec]] = {}
    others: list[Node] = []
    for node in nodes:
        if isinstance(node, Leaf):
            by_field.setdefault(node.field, []).extend(node.tests)
        else:
            others.append(node)
    leaves: list[Node] = [Leaf(field, tuple(dict.fromkeys(tests))) for field, tests in by_field.items()]
    return leaves + others


def cost(node: Node) -> float:
    if isinstance(node, Leaf):
        return sum(cost_of(t) for t in node.tests) / max(1, len(node.tests)) + 0.01 * len(node.tests)
    if isinstance(node, Negation):
        return cost(node.child) + 0.5
    return sum(cost(c) for c in node.children)


# ---------------------------------------------------------------- Node -> predicate


def to_predicate(node: Node) -> Predicate:
    if isinstance(node, Leaf):
        return compile_leaf(node.field, node.tests)
    if isinstance(node, Negation):
        inner = to_predicate(node.child)
        return lambda r: not inner(r)
    preds = tuple(to_predicate(c) for c in node.children)
    if isinstance(node, AllOf):
        return _all(preds)
    return _any(preds)


def _all(preds: tuple[Predicate, ...]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda r: a(r) and b(r)

    def every(record: Record) -> bool:
        for pred in preds:  # noqa: SIM110 - a plain loop is ~2x faster than all(<generator>) here
            if not pred(record):
                return False
        return True

    return every


def _any(preds: tuple[Predicate, ...]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda r: a(r) or b(r)

    def some(record: Record) -> bool:
        for pred in preds:  # noqa: SIM110 - a plain loop is ~2x faster than any(<generator>) here
            if pred(record):
                return True
        return False

    return some


# ---------------------------------------------------------------- prefilter literals


def required_literals(node: Node) -> frozenset[str] | None:
    """Casefolded texts of which at least one occurs in every event the node matches.

    None means "no such guarantee" (negations, regexes, numbers, null ...): the rule must then
    be evaluated for every event. For an AND the most selective operand's set is kept.
    """
    if isinstance(node, Leaf):
        found: set[str] = set()
        for test in node.tests:
            literals = literals_of(test)
            if literals is None:
                return None
            found.update(literals)
        return frozenset(found)
    if isinstance(node, Negation):
        return None
    sets = [required_literals(c) for c in node.children]
    if isinstance(node, AnyOf):
        if any(s is None for s in sets):
            return None
        return frozenset().union(*(s for s in sets if s is not None))
    known = [s for s in sets if s is not None]
    if not known:
        return None
    return max(known, key=lambda s: (min((len(x) for x in s), default=0), -len(s)))


def compile_conditions(trees: Sequence[object]) -> tuple[Predicate, frozenset[str] | None]:
    """Several conditions in one rule are OR-ed (Sigma specification)."""
    nodes = [translate(t) for t in trees]
    node = simplify(nodes[0] if len(nodes) == 1 else AnyOf(tuple(nodes)))
    return to_predicate(node), required_literals(node)
