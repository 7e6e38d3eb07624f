"""Where the agent listens and where its clients (tray, CLI) look for it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from agent.localchannel.windows import PIPE_NAME

SOCKET_NAME = "agent.sock"
ADDRESS_ENV = "TG_AGENT_ADDRESS"
# Same directory as agent.platform.linux.SYSTEM_STATE_DIR (a test keeps the two in step): the
# tray runs as the staff user, whose own default state dir is not the service's.
LINUX_SYSTEM_STATE_DIR = Path("/var/lib/terminal-guard")


def default_address(state_dir: Path) -> str:
    """The agent's listening address: the named pipe on Windows, ``state_dir/agent.sock`` elsewhere."""
    if sys.platform == "win32":
        return PIPE_NAME
    return str(state_dir / SOCKET_NAME)


def default_client_address(user_state_dir: Path | None = None) -> str:
    """Where a client looks for the agent: $TG_AGENT_ADDRESS, else the service's address.

    On Linux a developer may run the agent as themselves; its socket then sits in their own
    state dir, which is used when the system one does not exist.
    """
    override = os.environ.get(ADDRESS_ENV, "").strip()
    if override:
        return override
    if sys.platform == "win32":
        return PIPE_NAME
    system = LINUX_SYSTEM_STATE_DIR / SOCKET_NAME
    if user_state_dir is not None and not system.exists() and (user_state_dir / SOCKET_NAME).exists():
        return str(user_state_dir / SOCKET_NAME)
    return str(system)
