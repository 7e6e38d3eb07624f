"""`terminal-guard rules lint`: validate rule files (arrives with the detection issue)."""

from __future__ import annotations

from agent.commands.common import CommandError


def run_lint(paths: list[str]) -> int:
    raise CommandError("rules lint: not yet available (arrives with the detection issue)")
