"""Sigma-compatible detection rules: parse with pySigma, compile once, match in-process."""

from agent.rules.engine import RuleError, RuleInfo, RuleSet, builtin_rules, builtin_texts, lint

__all__ = ["RuleError", "RuleInfo", "RuleSet", "builtin_rules", "builtin_texts", "lint"]
