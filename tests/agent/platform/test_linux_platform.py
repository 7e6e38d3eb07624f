from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from agent.platform import UserSession, current_platform
from agent.platform.linux import LinuxPlatform, is_remote_host, state_dir_for, tty_idle_seconds

REPO = Path(__file__).resolve().parents[3]


def test_current_platform_on_linux_is_linux() -> None:
    assert isinstance(current_platform(), LinuxPlatform)
    assert current_platform().name == "linux"


def test_default_config_path_is_under_etc() -> None:
    assert LinuxPlatform().default_config_path() == Path("/etc/terminal-guard/agent.toml")


def test_state_dir_is_system_wide_for_root_and_per_user_otherwise() -> None:
    home = Path("/home/staff")
    assert state_dir_for(euid=0, home=home, environ={}) == Path("/var/lib/terminal-guard")
    assert state_dir_for(euid=1000, home=home, environ={}) == home / ".local/state/terminal-guard"
    assert state_dir_for(euid=1000, home=home, environ={"XDG_STATE_HOME": "/srv/xdg"}) == Path(
        "/srv/xdg/terminal-guard"
    )
    # A relative XDG_STATE_HOME is invalid per the spec and ignored.
    per_user = home / ".local/state/terminal-guard"
    assert state_dir_for(euid=1000, home=home, environ={"XDG_STATE_HOME": "rel"}) == per_user


def test_default_state_dir_matches_the_running_user() -> None:
    expected = state_dir_for(euid=os.geteuid(), home=Path.home(), environ=os.environ)
    assert LinuxPlatform().default_state_dir() == expected
    assert expected.is_absolute()


@pytest.mark.parametrize(
    ("host", "remote"),
    [
        (None, False),
        ("", False),
        (":0", False),
        (":1.0", False),
        ("unix:0", False),
        ("tmux(4321).%0", False),
        ("203.0.113.9", True),
        ("2001:db8::5", True),
        ("127.0.0.1", True),  # a tunnel into the local sshd looks exactly like this
        ("office-pc.lan", True),
    ],
)
def test_remote_host_classification(host: str | None, remote: bool) -> None:
    assert is_remote_host(host) is remote


def test_user_sessions_mirror_utmp() -> None:
    sessions = LinuxPlatform().user_sessions()
    users = psutil.users()
    assert len(sessions) == len(users)
    for session, entry in zip(sessions, users, strict=True):
        assert isinstance(session, UserSession)
        assert session.user == entry.name
        assert session.remote is is_remote_host(entry.host)


def test_tty_idle_is_time_since_the_latest_terminal_input(tmp_path: Path) -> None:
    (tmp_path / "pts").mkdir()
    for name, accessed in (("tty1", 1000.0), ("pts/3", 1900.0)):
        device = tmp_path / name
        device.touch()
        os.utime(device, (accessed, accessed))
    assert tty_idle_seconds(["tty1", "pts/3"], dev_dir=tmp_path, now=2000.0) == pytest.approx(100.0)


def test_tty_idle_is_unknown_with_a_graphical_session_or_none_at_all(tmp_path: Path) -> None:
    (tmp_path / "tty1").touch()
    assert tty_idle_seconds(["tty1", ":0"], dev_dir=tmp_path, now=time.time()) is None
    assert tty_idle_seconds(["tty1", None], dev_dir=tmp_path, now=time.time()) is None
    assert tty_idle_seconds([], dev_dir=tmp_path, now=time.time()) is None


def test_idle_seconds_is_none_or_non_negative() -> None:
    idle = LinuxPlatform().idle_seconds()
    assert idle is None or idle >= 0


def test_run_service_returns_mains_code_after_sigterm() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    seen: list[str] = []

    def main(stop: threading.Event) -> int:
        seen.append(threading.current_thread().name)
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(10), "SIGTERM did not set the stop event"
        return 7

    assert LinuxPlatform().run_service(main) == 7
    assert seen == ["agent-main"]
    assert signal.getsignal(signal.SIGTERM) is previous


SERVICE_SCRIPT = textwrap.dedent(
    """
    import sys, threading
    from agent.platform.linux import LinuxPlatform

    def main(stop: threading.Event) -> int:
        print("ready", flush=True)
        stop.wait()
        print("stopping cleanly", flush=True)
        return 3

    sys.exit(LinuxPlatform().run_service(main))
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_service_process_stops_cleanly_on_signal(signum: int) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVICE_SCRIPT],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        process.send_signal(signum)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 3, err
    assert out.strip() == "stopping cleanly"
    assert "Traceback" not in err
