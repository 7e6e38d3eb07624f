"""One compiled rule: plain metadata, its condition tree, and the predicate built from the tree.

The metadata and the tree are all that is needed to rebuild the rule (codec.py stores exactly
those); the predicate and the prefilter literals are derived here, the same way whether the tree
comes straight from the compiler or from a cached JSON document.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.rules.matchers import Predicate
from agent.rules.tree import Node, required_literals, to_predicate


@dataclass(frozen=True)
class CompiledRule:
    key: str  # Sigma id, else name, else the file's stem
    title: str
    severity: str  # low | medium | high | critical
    category: str  # one of agent.findings.CATEGORIES
    logsource: str  # process_creation | network_connection
    file: str
    node: Node = field(repr=False, compare=False)
    predicate: Predicate = field(repr=False, compare=False)
    literals: frozenset[str] | None = field(repr=False, compare=False)


def build_rule(*, key: str, title: str, severity: str, category: str, logsource: str, file: str,
               node: Node) -> CompiledRule:
    """Close the tree into a predicate; raises RegexError for a pattern that is not valid RE2."""
    return CompiledRule(key=key, title=title, severity=severity, category=category, logsource=logsource,
                        file=file, node=node, predicate=to_predicate(node), literals=required_literals(node))
