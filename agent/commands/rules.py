"""`terminal-guard rules lint`: validate Sigma-compatible rule files, every error with file and field."""

from __future__ import annotations


def run_lint(paths: list[str], *, as_json: bool) -> int:
    from agent.rules.lint_report import run_lint as report

    return report(paths, as_json=as_json)
