"""pySigma's parsed condition tree -> our own small tree (tree.py). The only module that reads pySigma's types.

pySigma parses the YAML, applies the modifiers and resolves the condition (`and`/`or`/`not`,
parentheses, `1 of selection_*`, `all of them` ...) into a tree of ConditionAND/OR/NOT whose
leaves are field = value expressions. We translate that tree once into plain data: value-test
specs with casefolded needles and RE2 pattern texts (matchers.py), then `tree.simplify` merges the
OR-ed values of one field into a single leaf (so `Image|endswith: [a, b, c]` costs one
`str.endswith(tuple)`) and orders AND operands cheapest first. Turning the tree into a predicate is
tree.py's job, so the result can also be serialised (codec.py) and rebuilt where pySigma is absent.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    compile_regex,
    escape_regex,
    regex_error_text,
)
from agent.rules.regex_literals import regex_literals
from agent.rules.tree import AllOf, AnyOf, Leaf, Negation, Node, simplify

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
    multiline = SigmaRegularExpressionFlag.MULTILINE in flags
    dotall = SigmaRegularExpressionFlag.DOTALL in flags
    try:  # compiled here only to reject a bad rule with its reason; compile_leaf compiles it for use
        compile_regex(pattern, ignorecase=ignorecase, multiline=multiline, dotall=dotall)
    except RegexError as exc:
        raise RuleRejected("detection", f"invalid regular expression {pattern!r}: {regex_error_text(exc)}") from exc
    return RegexTest(pattern, ignorecase, multiline, dotall, None if ignorecase else regex_literals(pattern))


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
    return GlobTest(pattern, literal, cased)


def compile_conditions(trees: Sequence[object]) -> Node:
    """The rule's simplified tree. Several conditions in one rule are OR-ed (Sigma specification)."""
    nodes = [translate(t) for t in trees]
    return simplify(nodes[0] if len(nodes) == 1 else AnyOf(tuple(nodes)))
