"""The compiled rule set: Sigma rules in, findings out, no I/O while matching (DESIGN.md).

A `RuleSet` is immutable once built and holds only pure predicates, so any number of sensor
threads may call `match_process` / `match_connection` at once. Each event is flattened once into
a `Record` (fields.py); only the rules of the event's log source are considered, and of those
only the rules whose required literals occur in the event (an index from literal to rules, see
tree.required_literals) or that have no such literal. With a thousand rules that skips
almost all predicate calls, which a plain loop over every rule cannot do.

This module evaluates rules and never imports pySigma or PyYAML itself: `from_texts` loads the
loader (which does) only when called, and `from_compiled` rebuilds a set from the JSON form that
a compile worker produced (isolated.py), so a service that compiles in a child process keeps
neither library in memory.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from agent.findings import Finding, process_finding_fields
from agent.rules.codec import dump_rules, load_rules
from agent.rules.compiled import CompiledRule
from agent.rules.errors import RuleError
from agent.rules.fields import (
    NETWORK_CONNECTION,
    PROCESS_CREATION,
    Record,
    make_record,
    network_fields,
    process_fields,
)
from agent.rules.tree import fields_of
from agent.sensors.observations import NetworkConnection, ProcessStarted

RULE_SUFFIXES = (".yml", ".yaml")
PE_INFO_FIELDS = frozenset({"OriginalFileName", "Product", "Company", "Description"})

__all__ = ["RuleError", "RuleInfo", "RuleSet", "builtin_rules", "builtin_texts", "lint", "lint_with_rules"]


@dataclass(frozen=True)
class RuleInfo:
    """What `rules lint` and `status` may show about a loaded rule."""

    rule: str
    title: str
    severity: str
    category: str
    logsource: str
    file: str


GRAM = 3  # literals are bucketed by their first three characters


class _SourceIndex:
    """The rules of one log source, with the literal -> rules index of the prefilter.

    Checking every distinct literal with `in` costs ~0.1 us each; with thousands of literals that
    is most of the per-event time. So literals are bucketed by their first three characters: the
    set of three-character slices of the event (a few hundred) selects the few buckets worth
    checking. A literal can only occur in the event if its first three characters do.
    """

    __slots__ = ("_always", "_by_gram", "_long", "_short", "rules")

    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        self.rules = tuple(rules)
        always: list[int] = []
        by_literal: dict[str, list[int]] = {}
        for index, rule in enumerate(self.rules):
            if rule.literals is None:
                always.append(index)
            else:
                for literal in rule.literals:
                    by_literal.setdefault(literal, []).append(index)
        self._always = frozenset(always)
        self._short = tuple((lit, tuple(ids)) for lit, ids in by_literal.items() if len(lit) < GRAM)
        by_gram: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
        for literal, ids in by_literal.items():
            if len(literal) >= GRAM:
                by_gram.setdefault(literal[:GRAM], []).append((literal, tuple(ids)))
        self._by_gram = {gram: tuple(entries) for gram, entries in by_gram.items()}
        self._long = tuple(entry for entries in self._by_gram.values() for entry in entries)

    def candidates(self, haystack: str) -> list[int]:
        hits = set(self._always)
        for literal, ids in self._short:
            if literal in haystack:
                hits.update(ids)
        if len(self._long) <= len(haystack):  # few literals: checking each is cheaper than slicing
            for literal, ids in self._long:
                if literal in haystack:
                    hits.update(ids)
        else:
            grams = {haystack[i : i + GRAM] for i in range(len(haystack) - GRAM + 1)}
            for gram in grams.intersection(self._by_gram):
                for literal, ids in self._by_gram[gram]:
                    if literal in haystack:
                        hits.update(ids)
        return sorted(hits)

    def matching(self, record: Record) -> list[CompiledRule]:
        rules = self.rules
        return [rules[i] for i in self.candidates(record.haystack) if rules[i].predicate(record)]


class RuleSet:
    """Compiled Sigma rules for process_creation and network_connection events."""

    __slots__ = ("_indexes", "_rules")

    def __init__(self, rules: Iterable[CompiledRule] = ()) -> None:
        self._rules = tuple(rules)
        self._indexes = {
            source: _SourceIndex([r for r in self._rules if r.logsource == source])
            for source in (PROCESS_CREATION, NETWORK_CONNECTION)
        }

    @property
    def needs_pe_info(self) -> bool:
        """Whether a rule reads Windows version info (a keyword searches it too): reading it costs a
        file parse per new program, so the process sensor does it only then."""
        wanted = PE_INFO_FIELDS | {None}
        return any(not wanted.isdisjoint(fields_of(rule.node)) for rule in self._rules)

    @classmethod
    def from_texts(cls, texts: Sequence[tuple[str, str]]) -> tuple[RuleSet, list[RuleError]]:
        """(name, yaml text) pairs -> the good rules and an error for each bad one.

        A rule whose id repeats an earlier rule's id is rejected, so that a policy rule cannot
        silently shadow a built-in one (or the reverse).
        """
        from agent.rules.loader import load_text  # pySigma + PyYAML: imported only by processes that compile

        rules: list[CompiledRule] = []
        errors: list[RuleError] = []
        seen: dict[str, str] = {}
        for name, text in texts:
            loaded, problems = load_text(name, text)
            errors.extend(problems)
            for rule in loaded:
                if rule.key in seen:
                    errors.append(RuleError(rule.file, "id", f"duplicate rule id {rule.key}: already used by "
                                                              f"{seen[rule.key]}"))
                    continue
                seen[rule.key] = rule.file
                rules.append(rule)
        return cls(rules), errors

    @classmethod
    def from_paths(cls, paths: Sequence[Path]) -> tuple[RuleSet, list[RuleError]]:
        """Rule files, or folders searched recursively for *.yml and *.yaml."""
        texts, errors = _read_rule_files(paths)
        ruleset, problems = cls.from_texts(texts)
        return ruleset, errors + problems

    @classmethod
    def from_compiled(cls, data: object) -> RuleSet:
        """Rebuild a set from `to_compiled()` output (after a JSON round trip), without pySigma.

        The document is validated strictly: anything that does not follow the format (codec.py)
        raises `CompiledFormatError` (a ValueError) naming the place, and the caller should
        compile from the rule texts again.
        """
        return cls(load_rules(data))

    def to_compiled(self) -> dict[str, Any]:
        """The JSON-ready form of this set: format version, each rule's metadata and condition tree."""
        return dump_rules(self._rules)

    def match_process(self, event: ProcessStarted) -> list[Finding]:
        record = make_record(process_fields(event))
        matched = self._indexes[PROCESS_CREATION].matching(record)
        if not matched:
            return []
        fields = process_finding_fields(event.process, event.parent)
        return [_finding(rule, fields, event.observed_at) for rule in matched]

    def match_connection(self, event: NetworkConnection) -> list[Finding]:
        record = make_record(network_fields(event))
        matched = self._indexes[NETWORK_CONNECTION].matching(record)
        if not matched:
            return []
        fields = {**process_finding_fields(event.process, None), **_network_finding_fields(record, event)}
        return [_finding(rule, fields, event.observed_at) for rule in matched]

    @property
    def rules(self) -> tuple[RuleInfo, ...]:
        return tuple(RuleInfo(r.key, r.title, r.severity, r.category, r.logsource, r.file) for r in self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def __repr__(self) -> str:
        return f"RuleSet({len(self)} rules)"


# ---------------------------------------------------------------- findings


def _finding(rule: CompiledRule, fields: dict[str, Any], observed_at: float) -> Finding:
    return Finding(rule=rule.key, title=rule.title, severity=rule.severity, category=rule.category,
                   fields=dict(fields), observed_at=observed_at)


def _network_finding_fields(record: Record, event: NetworkConnection) -> dict[str, Any]:
    def first(name: str) -> str | None:
        values = record.raw.get(name)
        return values[0] if values else None

    port = first("DestinationPort")
    source_port = first("SourcePort")
    return {
        "destination.ip": first("DestinationIp"),
        "destination.port": int(port) if port is not None else None,
        "destination.domain": first("DestinationHostname"),
        "source.ip": first("SourceIp"),
        "source.port": int(source_port) if source_port is not None else None,
        "network.direction": event.direction,
        "network.transport": event.protocol,
    }


# ---------------------------------------------------------------- files, built-ins, lint


def _read_rule_files(paths: Sequence[Path]) -> tuple[list[tuple[str, str]], list[RuleError]]:
    texts: list[tuple[str, str]] = []
    errors: list[RuleError] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in RULE_SUFFIXES and p.is_file())
        elif path.exists():
            files = [path]
        else:
            errors.append(RuleError(str(path), "path", "no such file or directory"))
            continue
        for file in files:
            try:
                texts.append((str(file), file.read_text(encoding="utf-8")))
            except UnicodeDecodeError as exc:
                errors.append(RuleError(str(file), "path", f"not UTF-8 text: {exc.reason} at byte {exc.start}"))
            except OSError as exc:
                errors.append(RuleError(str(file), "path", f"cannot read: {exc.strerror or exc}"))
    return texts, errors


def builtin_texts() -> list[tuple[str, str]]:
    """The shipped pack as (name, yaml) pairs, to combine with policy rules in one RuleSet."""
    folder = resources.files("agent.rules") / "builtin"
    entries = sorted((e for e in folder.iterdir() if e.name.endswith(RULE_SUFFIXES)), key=lambda e: e.name)
    return [(f"builtin/{e.name}", e.read_text(encoding="utf-8")) for e in entries]


@functools.cache
def builtin_rules() -> RuleSet:
    """The shipped rule pack. It is part of the product, so a broken pack fails loudly."""
    ruleset, errors = RuleSet.from_texts(builtin_texts())
    if errors:
        raise RuntimeError("built-in rule pack is invalid:" + os.linesep + os.linesep.join(map(str, errors)))
    return ruleset


def lint(paths: Sequence[Path]) -> list[RuleError]:
    """Every problem in the given rule files or folders; empty when all of them load."""
    return lint_with_rules(paths)[1]


def lint_with_rules(paths: Sequence[Path]) -> tuple[RuleSet, list[RuleError]]:
    """`lint`, plus the rules that did load (for the summary of `rules lint`)."""
    errors: list[RuleError] = []
    for path in map(Path, paths):
        if path.is_dir() and not any(p.suffix.lower() in RULE_SUFFIXES for p in path.rglob("*") if p.is_file()):
            errors.append(RuleError(str(path), "path", "no rule files (*.yml, *.yaml) in this folder"))
    ruleset, problems = RuleSet.from_paths(paths)
    return ruleset, errors + problems
