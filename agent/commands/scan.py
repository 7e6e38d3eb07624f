"""`terminal-guard scan`: one-shot scan (arrives with the detection and export issues)."""

from __future__ import annotations

from agent.commands.common import CommandError
from agent.config import AgentConfig


def run_scan(config: AgentConfig, *, files: list[str] | None, as_json: bool) -> int:
    raise CommandError("scan: not yet available (arrives with the detection and export issues)")
