"""A real `terminal-guard` process for integration tests: its own config, state folder and keystore file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from agent.spool import Spool

AGENT = [sys.executable, "-m", "agent.cli"]


class AgentProcess:
    def __init__(self, root: Path, *, heartbeat_interval_s: float = 1.0, batch_size: int = 200,
                 backoff_max_s: float = 2.0, extra_config: str = "") -> None:
        self.root = root
        self.state_dir = root / "state"
        self.config = root / "agent.toml"
        self.log_path = root / "agent.stderr"
        root.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f'[agent]\nstate_dir = "{self.state_dir}"\nheartbeat_interval_s = {heartbeat_interval_s}\n'
            f"policy_interval_s = 5\n\n"
            '[keystore]\nbackend = "file"\n\n'
            f"[spool]\nbatch_size = {batch_size}\n\n"
            f"[uplink]\nbackoff_initial_s = 0.2\nbackoff_max_s = {backoff_max_s}\n\n"
            f'[log]\nlevel = "DEBUG"\n{extra_config}',
            "utf-8",
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*AGENT, "--config", str(self.config), *args], capture_output=True, text=True,
                              input=input, timeout=timeout)

    def enroll(self, url: str, token: str, ca_file: Path | str | None) -> dict[str, Any]:
        args = ["enroll", "--hq", url, "--token", token, "--json"]
        if ca_file:
            args += ["--ca", str(ca_file)]
        done = self.cli(*args)
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    def start(self) -> None:
        with open(self.log_path, "ab") as err:
            self.proc = subprocess.Popen([*AGENT, "--config", str(self.config), "run"], stdout=err, stderr=err)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def status(self) -> dict[str, Any]:
        done = self.cli("status", "--json")
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    def spool(self) -> Spool:
        """The agent's own spool file, opened from this (test) process: how tests feed events in."""
        return Spool(self.state_dir / "spool.sqlite3")

    def log_lines(self) -> list[dict[str, Any]]:
        path = self.state_dir / "logs" / "agent.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def wait_until(predicate: Any, timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
