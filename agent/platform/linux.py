"""Linux: FHS paths, utmp sessions through psutil, tty idle time, logind screen locks and a
foreground service.

On Linux the agent runs as a systemd ``Type=simple`` unit, so "running as a service" is just
running in the foreground until SIGTERM (systemd stop) or SIGINT (Ctrl-C in a terminal).
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import psutil

from agent.platform.base import ScreenLockWatch, ServiceMain, UserSession
from agent.platform.stop_signals import run_until_stopped

CONFIG_PATH = Path("/etc/terminal-guard/agent.toml")
SYSTEM_STATE_DIR = Path("/var/lib/terminal-guard")
APP_DIR_NAME = "terminal-guard"

# utmp "host" values that are not a network origin: an X display (":0", ":1.0") or the tag a
# terminal multiplexer writes for its panes ("tmux(1234).%0"). Loopback addresses are kept
# remote on purpose: a tunnel (frp, ngrok) into the local sshd shows up as 127.0.0.1.
_LOCAL_DISPLAY = re.compile(r"^(unix)?:\d+(\.\d+)?$")
_MULTIPLEXER = re.compile(r"^(tmux|screen)\(")


def is_remote_host(host: str | None) -> bool:
    """Whether a utmp host field names a network origin rather than this machine's display."""
    if not host:
        return False
    return not (_LOCAL_DISPLAY.match(host) or _MULTIPLEXER.match(host))


def tty_idle_seconds(terminals: Iterable[str | None], *, dev_dir: Path, now: float) -> float | None:
    """Idle time from the last input on the sessions' terminals, the way w(1) computes it.

    A terminal's access time moves when its input is read. A session with no terminal device
    (a graphical login) makes the answer unknown, since its input is invisible here: better
    ``None`` than a confident "idle for hours" while someone is typing in X.
    """
    latest: float | None = None
    for terminal in terminals:
        if not terminal:
            return None
        try:
            accessed = (dev_dir / terminal).stat().st_atime
        except OSError:
            return None
        latest = accessed if latest is None else max(latest, accessed)
    if latest is None:
        return None
    return max(0.0, now - latest)


def state_dir_for(*, euid: int, home: Path, environ: Mapping[str, str]) -> Path:
    """The system state dir for root (the systemd service), the user's XDG state dir otherwise."""
    if euid == 0:
        return SYSTEM_STATE_DIR
    xdg = environ.get("XDG_STATE_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else home / ".local" / "state"
    return base / APP_DIR_NAME


class LinuxPlatform:
    name = "linux"

    def default_config_path(self) -> Path:
        return CONFIG_PATH

    def default_state_dir(self) -> Path:
        return state_dir_for(euid=os.geteuid(), home=Path.home(), environ=os.environ)

    def user_sessions(self) -> list[UserSession]:
        return [
            UserSession(
                user=entry.name,
                terminal=entry.terminal or None,
                host=entry.host or None,
                started=float(entry.started),
                remote=is_remote_host(entry.host),
            )
            for entry in psutil.users()
        ]

    def idle_seconds(self) -> float | None:
        terminals = [session.terminal for session in self.user_sessions()]
        return tty_idle_seconds(terminals, dev_dir=Path("/dev"), now=time.time())

    def screen_lock_watch(self) -> ScreenLockWatch:
        from agent.platform.logind import LogindLockWatch  # jeepney only where it is used

        return LogindLockWatch()

    def run_service(self, main: ServiceMain) -> int:
        return run_until_stopped(main, (signal.SIGTERM, signal.SIGINT))
