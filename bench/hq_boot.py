"""Waiting for a benchmark's HQ process to accept TLS (shared by bench_hq, bench_verify, load_hq)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from pathlib import Path


def wait_until_serving(proc: subprocess.Popen[bytes], *, port: int, ca_file: Path, log_file: Path,
                       timeout_s: float, who: str, poll_s: float = 0.1) -> None:
    """Return once HQ completes a TLS handshake on ``port``; exit with its log when it dies or stalls."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{who}: HQ exited: {log_file.read_text()[-2000:]}")
        try:
            context = ssl.create_default_context(cafile=str(ca_file))
            with socket.create_connection(("127.0.0.1", port), 1) as raw, \
                    context.wrap_socket(raw, server_hostname="127.0.0.1"):
                return
        except (OSError, ssl.SSLError):
            time.sleep(poll_s)
    raise SystemExit(f"{who}: HQ did not start within {timeout_s:.0f} s")
