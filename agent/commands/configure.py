"""`terminal-guard configure`: what a silent installer runs to write the agent's config.

It writes agent.toml (keeping what an existing file already says), pins the HQ CA and leaves the
one-time token in a 0600 file that the service consumes on first start. It never contacts HQ:
an installer must not fail because HQ is briefly away.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from urllib.parse import urlsplit

from agent.commands.common import CommandError
from agent.config import AgentConfig, ConfigError, load_config, render_config
from agent.enroll import pin_ca
from agent.enrollment import EnrollmentError

TOKEN_FILE = "enroll-token"  # noqa: S105 - a file name, not a secret


def _given(value: str | None) -> str | None:
    """msiexec passes unset properties as empty strings: treat them as not given."""
    return value.strip() if value and value.strip() else None


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


def run_configure(config_path: Path, *, hq: str | None, token: str | None, outlet: str | None,
                  ca: str | None) -> AgentConfig:
    hq, token, outlet, ca = _given(hq), _given(token), _given(outlet), _given(ca)
    if hq is not None:
        parts = urlsplit(hq)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise CommandError(f"--hq: expected an https:// URL with a host, got {hq!r}")
    try:
        current = load_config(config_path) if config_path.exists() else load_config(None)
    except ConfigError as exc:
        raise CommandError(str(exc)) from exc
    state_dir = current.agent.state_dir
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o711)
    try:
        ca_file = pin_ca(ca, state_dir) if ca else None
    except EnrollmentError as exc:
        raise CommandError(str(exc)) from exc
    hq_section = current.hq
    if hq is not None:
        hq_section = dataclasses.replace(hq_section, url=hq)
    if ca_file is not None:
        hq_section = dataclasses.replace(hq_section, ca_file=Path(ca_file))
    if token is not None:
        token_path = state_dir / TOKEN_FILE
        _write_private(token_path, token)
        hq_section = dataclasses.replace(hq_section, enroll_token_file=token_path)
    agent_section = dataclasses.replace(current.agent, outlet_id=outlet) if outlet else current.agent
    updated = dataclasses.replace(current, hq=hq_section, agent=agent_section)
    _write_private(config_path, render_config(updated))
    return updated
