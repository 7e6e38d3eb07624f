"""Value tests: what one Sigma value asks of one field, compiled once into a fast predicate.

Matching rules (Sigma specification, with the choices this engine makes where it is silent):
- strings are case-insensitive: both sides are compared casefolded (`str.casefold`, so `ẞ`,
  `ß` and `SS` agree); `|cased` compares the values as observed;
- `*` and `?` are wildcards (any run / exactly one character) unless escaped with `\\`;
- `|re` is an RE2 regular expression (the syntax pySigma validates with), case-sensitive unless
  `|re|i`, searched anywhere in the value (as Splunk, Chainsaw and Zircolite do); `|re|m` and
  `|re|s` set multi-line / dot-all. Rule patterns, wildcard patterns included, run on RE2, whose
  matching time is linear: a rule from policy cannot stall the sensor with a backtracking regex;
- numbers match a field whose text parses to the same number; `|lt`, `|gte` ... compare;
- `null` matches an absent field; `|exists: true/false` tests presence;
- `|cidr` matches an IPv4/IPv6 address inside the network (IPv4-mapped IPv6 counts as IPv4);
- a field with several spellings (path variants, see fields.py) matches when any spelling does.

Every test also names the literal text a match cannot do without (`literals`), which the rule
set uses to skip rules whose literals do not occur in the event at all.
"""

from __future__ import annotations

import ipaddress
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import re2

from agent.rules.fields import Record, Values

Predicate = Callable[[Record], bool]
ValuesTest = Callable[[Values], bool]

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a bad pattern is reported as a RuleError, not on stderr
RegexError = re2.error


class Pattern(Protocol):
    def search(self, text: str) -> object | None: ...

    def fullmatch(self, text: str) -> object | None: ...


def compile_regex(pattern: str, *, ignorecase: bool = False, multiline: bool = False,
                  dotall: bool = False) -> Pattern:
    """Compile with RE2; raises RegexError when the pattern is not valid RE2."""
    flags = "".join(flag for flag, on in (("i", ignorecase), ("m", multiline), ("s", dotall)) if on)
    compiled: Pattern = re2.compile(f"(?{flags}){pattern}" if flags else pattern, _RE2_OPTIONS)
    return compiled


def regex_error_text(error: Exception) -> str:
    """RE2 reports errors as bytes; make them readable."""
    reason = error.args[0] if error.args else error
    return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)


def escape_regex(text: str) -> str:
    """RE2-safe literal: ASCII punctuation and whitespace as \\x{..}, everything else as is."""
    return "".join(f"\\x{{{ord(c):x}}}" if c.isascii() and not (c.isalnum() or c == "_") else c for c in text)

# Above this many contains-needles one alternation regex beats a Python loop over `in`.
_REGEX_NEEDLE_THRESHOLD = 4


@dataclass(frozen=True)
class StrTest:
    """Wildcard-free string match. `needle` is casefolded unless `cased`."""

    kind: str  # "eq" | "prefix" | "suffix" | "contains"
    needle: str
    cased: bool = False


@dataclass(frozen=True)
class GlobTest:
    """A string with inner wildcards: an RE2 pattern (dot-all) that must match a whole (folded) value.

    The pattern is kept as text so that the spec is plain data (it is serialised, see codec.py);
    it is compiled once, by `compile_leaf`.
    """

    pattern: str
    literal: str  # longest wildcard-free run, casefolded: a match always contains it
    cased: bool = False


@dataclass(frozen=True)
class RegexTest:
    """A rule's `|re` pattern (RE2 syntax), searched anywhere in the raw value."""

    pattern: str
    ignorecase: bool = False
    multiline: bool = False
    dotall: bool = False
    literals: frozenset[str] | None = None  # see regex_literals.py


@dataclass(frozen=True)
class CidrTest:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class NumberTest:
    op: str  # "eq" | "lt" | "lte" | "gt" | "gte" | "neq"
    number: int | float


@dataclass(frozen=True)
class BoolTest:
    value: bool


@dataclass(frozen=True)
class NullTest:
    pass


@dataclass(frozen=True)
class ExistsTest:
    exists: bool


ValueTestSpec = StrTest | GlobTest | RegexTest | CidrTest | NumberTest | BoolTest | NullTest | ExistsTest


def literals_of(test: ValueTestSpec) -> frozenset[str] | None:
    """Casefolded texts of which every value matching `test` contains one; None if unknown."""
    if isinstance(test, StrTest):
        folded = test.needle.casefold()
        return frozenset({folded}) if folded else None
    if isinstance(test, GlobTest):
        return frozenset({test.literal}) if test.literal else None
    if isinstance(test, RegexTest):
        return test.literals
    return None


def cost_of(test: ValueTestSpec) -> float:
    """Relative evaluation cost, used only to order the operands of an AND."""
    if isinstance(test, StrTest | NullTest | ExistsTest | BoolTest):
        return 1.0
    if isinstance(test, CidrTest | NumberTest):
        return 2.0
    if isinstance(test, GlobTest):
        return 3.0
    return 5.0


# ---------------------------------------------------------------- value-level predicates


def _string_set(tests: Sequence[StrTest]) -> ValuesTest:
    """One predicate for an OR of wildcard-free string tests on the same field."""
    equal = frozenset(t.needle for t in tests if t.kind == "eq")
    prefixes = tuple(t.needle for t in tests if t.kind == "prefix")
    suffixes = tuple(t.needle for t in tests if t.kind == "suffix")
    needles = tuple(dict.fromkeys(t.needle for t in tests if t.kind == "contains"))
    contains = _contains_test(needles)

    def test(values: Values) -> bool:
        for value in values:
            if equal and value in equal:
                return True
            if prefixes and value.startswith(prefixes):
                return True
            if suffixes and value.endswith(suffixes):
                return True
            if contains is not None and contains(value):
                return True
        return False

    return test


def _contains_test(needles: tuple[str, ...]) -> Callable[[str], bool] | None:
    if not needles:
        return None
    if len(needles) == 1:
        (needle,) = needles
        return lambda value: needle in value
    if len(needles) <= _REGEX_NEEDLE_THRESHOLD:
        return lambda value: any(n in value for n in needles)
    alternation = re.compile("|".join(re.escape(n) for n in sorted(needles, key=len, reverse=True)))
    return lambda value: alternation.search(value) is not None


def _glob(test: GlobTest) -> ValuesTest:
    fullmatch = compile_regex(test.pattern, dotall=True).fullmatch
    return lambda values: any(fullmatch(v) is not None for v in values)


def _regex(test: RegexTest) -> ValuesTest:
    search = compile_regex(test.pattern, ignorecase=test.ignorecase, multiline=test.multiline,
                           dotall=test.dotall).search
    return lambda values: any(search(v) is not None for v in values)


def _as_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _cidr(test: CidrTest) -> ValuesTest:
    network = test.network

    def match(values: Values) -> bool:
        for value in values:
            address = _as_ip(value)
            if address is not None and address.version == network.version and address in network:
                return True
        return False

    return match


def _as_number(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return number if number == number else None  # NaN equals nothing


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "eq": operator.eq,
    "neq": operator.ne,
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
}


def _number(test: NumberTest) -> ValuesTest:
    compare, number = _COMPARE[test.op], test.number

    def match(values: Values) -> bool:
        for value in values:
            parsed = _as_number(value)
            if parsed is not None and compare(parsed, number):
                return True
        return False

    return match


def _bool(test: BoolTest) -> ValuesTest:
    wanted = "true" if test.value else "false"
    return lambda values: wanted in values  # folded values


def _values_tests(tests: Sequence[ValueTestSpec]) -> list[tuple[bool, ValuesTest]]:
    """(works on folded values?, predicate) for an OR of tests on one field."""
    out: list[tuple[bool, ValuesTest]] = []
    for cased in (False, True):
        strings = [t for t in tests if isinstance(t, StrTest) and t.cased is cased]
        if strings:
            out.append((not cased, _string_set(strings)))
    for test in tests:
        if isinstance(test, StrTest):
            continue
        if isinstance(test, GlobTest):
            out.append((not test.cased, _glob(test)))
        elif isinstance(test, RegexTest):
            out.append((False, _regex(test)))
        elif isinstance(test, CidrTest):
            out.append((False, _cidr(test)))
        elif isinstance(test, NumberTest):
            out.append((False, _number(test)))
        elif isinstance(test, BoolTest):
            out.append((True, _bool(test)))
        elif isinstance(test, NullTest):
            out.append((True, _is_absent))
        else:
            out.append((True, _is_present if test.exists else _is_absent))
    return out


def _is_absent(values: Values) -> bool:
    return not values


def _is_present(values: Values) -> bool:
    return bool(values)


_NONE: Values = ()


def compile_leaf(field: str | None, tests: Sequence[ValueTestSpec]) -> Predicate:
    """Predicate for "field matches any of tests"; field None searches every field (keywords).

    Raises RegexError when a glob or regex pattern is not valid RE2 (only a damaged compiled
    rule set can carry one: the compiler validates every pattern it emits).
    """
    parts = _values_tests(tests)
    if len(parts) == 1:
        on_folded, match = parts[0]
        if field is None:
            return (lambda r: match(r.all_folded)) if on_folded else (lambda r: match(r.all_raw))
        if on_folded:
            return lambda r: match(r.folded.get(field, _NONE))
        return lambda r: match(r.raw.get(field, _NONE))

    def predicate(record: Record) -> bool:
        if field is None:
            folded, raw = record.all_folded, record.all_raw
        else:
            folded, raw = record.folded.get(field, _NONE), record.raw.get(field, _NONE)
        return any(match(folded if on_folded else raw) for on_folded, match in parts)

    return predicate
