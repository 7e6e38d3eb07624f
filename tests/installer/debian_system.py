"""Installing, inspecting and purging the terminal-guard .deb on this machine, for the installer tests.

Everything here acts on the real system (dpkg, /opt, /etc, /var), so every test goes through
``purge`` in a teardown: a failing test must not leave the package, its state or its systemd
links behind for the next run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "terminal-guard"
CONFIG = Path("/etc/terminal-guard/agent.toml")
STATE_DIR = Path("/var/lib/terminal-guard")
LOG_DIR = Path("/var/log/terminal-guard")
OPT_DIR = Path("/opt/terminal-guard")
UNIT = Path("/lib/systemd/system/terminal-guard.service")
WANTS_LINK = Path("/etc/systemd/system/multi-user.target.wants/terminal-guard.service")
AGENT = Path("/usr/bin/terminal-guard")
# Everything the package or its scripts create; after a purge none of it may exist.
FOOTPRINT = (OPT_DIR, CONFIG.parent, STATE_DIR, LOG_DIR, UNIT, WANTS_LINK, AGENT, Path("/usr/bin/terminal-guard-tray"),
             Path("/etc/xdg/autostart/terminal-guard-tray.desktop"))
PRESEED_ENV = ("TG_HQ_URL", "TG_ENROLL_TOKEN", "TG_HQ_CA", "TG_OUTLET_ID")


def run(*args: str | Path, env: dict[str, str] | None = None, timeout: float = 120,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                          env=env, input=stdin)


def base_env(**preseed: str) -> dict[str, str]:
    """This process's environment without stray preseed variables, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if k not in PRESEED_ENV}
    env["DEBIAN_FRONTEND"] = "noninteractive"
    env.update(preseed)
    return env


def is_installed() -> bool:
    out = run("dpkg-query", "-W", "-f=${db:Status-Status}", PACKAGE)
    return out.returncode == 0 and out.stdout.strip() == "installed"


def has_trace() -> bool:
    return run("dpkg-query", "-W", PACKAGE).returncode == 0


def install(deb: Path, **preseed: str) -> subprocess.CompletedProcess[str]:
    return run("dpkg", "-i", deb, env=base_env(**preseed), timeout=180)


def purge() -> subprocess.CompletedProcess[str] | None:
    if not has_trace():
        return None
    return run("dpkg", "--purge", PACKAGE, env=base_env(), timeout=180)


def leftovers() -> list[str]:
    return [str(path) for path in FOOTPRINT if path.exists() or path.is_symlink()]


DEBCONF_DB = Path("/var/cache/debconf")


def debconf_records() -> str:
    """Every record debconf keeps about terminal-guard questions (answers, passwords, templates)."""
    records = []
    for db in ("config.dat", "passwords.dat", "templates.dat"):
        path = DEBCONF_DB / db
        text = path.read_text("utf-8", errors="replace") if path.exists() else ""
        records += [record for record in text.split("\n\n") if f"Name: {PACKAGE}/" in record]
    return "\n\n".join(records)


def set_debconf(**answers: str) -> None:
    kinds = {"enroll_token": "password"}
    lines = "".join(f"{PACKAGE} {PACKAGE}/{key} {kinds.get(key, 'string')} {value}\n" for key, value in answers.items())
    out = run("debconf-set-selections", stdin=lines)
    assert out.returncode == 0, out.stderr


def clear_debconf() -> None:
    """Remove any terminal-guard answers, e.g. preseeded by a test that failed before installing."""
    run("sh", "-c", f"echo PURGE | debconf-communicate {PACKAGE}")


@dataclass
class AgentProcess:
    """The installed agent run in the foreground, as systemd would run it (systemd is not PID 1 here)."""

    proc: subprocess.Popen[bytes]
    output: Path

    @classmethod
    def start(cls, output: Path) -> AgentProcess:
        handle = output.open("wb")
        try:
            proc = subprocess.Popen([str(AGENT), "--config", str(CONFIG), "run"], stdout=handle,
                                    stderr=subprocess.STDOUT, env=base_env())
        finally:
            handle.close()
        return cls(proc, output)

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def text(self) -> str:
        return self.output.read_text(errors="replace")[-4000:]


def tray_once(*prefix: str) -> dict[str, object]:
    """`terminal-guard-tray --once` (offscreen Qt), optionally run through a prefix such as setpriv."""
    env = {**base_env(), "QT_QPA_PLATFORM": "offscreen", "HOME": "/tmp", "XDG_RUNTIME_DIR": "/tmp"}
    out = run(*prefix, "/usr/bin/terminal-guard-tray", "--once", "--lang", "en", env=env, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    view: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return view


HqCli = Callable[..., subprocess.CompletedProcess[str]]


def wait_for_heartbeat(hq_cli: HqCli, device_id: str, *, timeout: float) -> dict[str, object]:
    """Poll `terminal-guard-hq devices --json` until the device has at least one heartbeat."""
    deadline = time.monotonic() + timeout
    last: dict[str, object] = {}
    while time.monotonic() < deadline:
        out = hq_cli("devices", "--json")
        assert out.returncode == 0, out.stderr
        rows = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
        last = next((row for row in rows if row["device_id"] == device_id), {})
        if int(str(last.get("heartbeat_count") or 0)) >= 1:
            return last
        time.sleep(0.5)
    raise AssertionError(f"no heartbeat from {device_id} within {timeout:.0f} s; HQ lists {last}")


def enrollment_token(hq_cli: HqCli, outlet: str) -> str:
    out = hq_cli("token", "create", "--outlet", outlet)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]
