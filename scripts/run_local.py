"""`make run`: a local HQ on loopback, an enrolled agent, the tray when a display exists.

Everything lives under .run/ so a second `make run` reuses the same HQ data and enrollment.
Ctrl-C stops all of it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / ".run"
BIN = Path(sys.executable).parent
OUTLET = "outlet-local"


def free_port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            sys.exit(f"run: HQ exited with code {proc.returncode}; see {RUN / 'hq.log'}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"run: HQ did not listen on port {port} within {timeout_s:.0f} s")


def hq_cli(*args: str) -> str:
    out = subprocess.run([str(BIN / "terminal-guard-hq"), "--data-dir", str(RUN / "hq"), *args],
                         check=True, capture_output=True, text=True)
    return out.stdout


def write_agent_config(state_dir: Path) -> Path:
    config = RUN / "agent.toml"
    config.write_text(
        "# Written by `make run`: a local agent whose key is kept in a 0600 file (no desktop keyring here).\n"
        f'[agent]\nstate_dir = "{state_dir}"\nheartbeat_interval_s = 10\n\n'
        '[keystore]\nbackend = "file"\n',
        "utf-8",
    )
    return config


def main() -> int:
    RUN.mkdir(exist_ok=True)
    port = free_port(8443)
    url = f"https://127.0.0.1:{port}"
    procs: list[subprocess.Popen[bytes]] = []
    hq_log = open(RUN / "hq.log", "ab")  # noqa: SIM115 - kept open for the child's lifetime
    procs.append(subprocess.Popen([str(BIN / "terminal-guard-hq"), "--data-dir", str(RUN / "hq"), "serve",
                                   "--host", "127.0.0.1", "--port", str(port)], stdout=hq_log, stderr=hq_log))
    try:
        wait_for_port(port, procs[0])
        state_dir = RUN / "agent"
        config = write_agent_config(state_dir)
        agent = [str(BIN / "terminal-guard"), "--config", str(config)]
        if not (state_dir / "enrollment.json").exists():
            token = hq_cli("token", "create", "--outlet", OUTLET).strip().splitlines()[-1]
            subprocess.run([*agent, "enroll", "--hq", url, "--token", token, "--ca", str(RUN / "hq" / "ca.pem")],
                           check=True)
        procs.append(subprocess.Popen([*agent, "run"]))
        if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
            procs.append(subprocess.Popen([str(BIN / "terminal-guard-tray"), "--address",
                                           str(state_dir / "agent.sock")]))
        else:
            print("run: no display, so no tray (set DISPLAY to see it)")
        print(f"\nTerminal Guard is running.\n  HQ:       {url}  (CA: {RUN / 'hq' / 'ca.pem'})\n"
              f"  API:      {url}/openapi.json  (the web console arrives with the HQ-console issue)\n"
              f"  agent:    {BIN / 'terminal-guard'} --config {config} status\n"
              f"  devices:  {BIN / 'terminal-guard-hq'} --data-dir {RUN / 'hq'} devices\n"
              "Ctrl-C stops everything.\n", flush=True)
        while all(p.poll() is None for p in procs):
            time.sleep(1)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.exit(main())
