"""What every command needs: the config, printing, and the error that means exit code 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from agent.config import AgentConfig, ConfigError, load_config


class CommandError(Exception):
    """A failure the user can act on: printed to stderr, exit code 2."""


def config_from(path: str | None) -> AgentConfig:
    try:
        return load_config(Path(path) if path else None)
    except ConfigError as exc:
        raise CommandError(str(exc)) from exc


def emit(obj: dict[str, Any], *, as_json: bool, text: str | None = None) -> None:
    if as_json:
        print(json.dumps(obj, ensure_ascii=False, default=str))
    else:
        print(text if text is not None else "\n".join(f"{k}: {v}" for k, v in obj.items()))
    sys.stdout.flush()
