"""Sigma-compatible detection rules: parse with pySigma, compile once, match in-process.

The service compiles in a child process instead (`agent.rules.isolated.compile_isolated`), so that
pySigma and PyYAML never enter its memory; importing this package imports neither of them.
"""

from agent.rules.engine import RuleError, RuleInfo, RuleSet, builtin_rules, builtin_texts, lint

__all__ = ["RuleError", "RuleInfo", "RuleSet", "builtin_rules", "builtin_texts", "lint"]
