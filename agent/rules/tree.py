"""The condition tree of one compiled rule, and the predicate made from it.

A rule's detection ends up as a small tree of plain data: `Leaf` (one field, OR-ed value-test
specs from matchers.py), `AllOf`, `AnyOf` and `Negation`. The compiler (compiler.py, the only
module that knows pySigma) builds it; codec.py writes it to JSON and reads it back; this module
simplifies it, orders it by cost, finds the literals the prefilter can use and closes it into one
predicate. Nothing here imports pySigma or PyYAML, so a process that only evaluates rules does
not pay for them (see isolated.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent.rules.fields import Record
from agent.rules.matchers import Predicate, ValueTestSpec, compile_leaf, cost_of, literals_of


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


def fields_of(node: Node) -> set[str | None]:
    """The fields a rule reads (None: a keyword, which searches every field)."""
    if isinstance(node, Leaf):
        return {node.field}
    if isinstance(node, Negation):
        return fields_of(node.child)
    return set().union(*(fields_of(child) for child in node.children))


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
    """One closure for the whole tree; raises RegexError for a pattern that is not valid RE2."""
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
