"""A real `terminal-guard-hq serve` subprocess on loopback, for HQ and agent integration tests.

    with HqServer(db_url) as hq:
        token = hq.cli("token", "create", "--outlet", "o1").stdout.splitlines()[-1]
        requests.get(hq.url + "/openapi.json", verify=hq.ca_file)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent
HQ = [sys.executable, "-m", "hq.cli"]
START_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HqServer:
    def __init__(
        self,
        db_url: str | None = None,
        *,
        data_dir: Path | None = None,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self._own_dir = data_dir is None
        self.data_dir = Path(tempfile.mkdtemp(prefix="tg-hq-")) if data_dir is None else data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.db_url = db_url or f"sqlite:///{self.data_dir / 'hq.sqlite3'}"
        self.port = port or free_port()
        self.extra_args = tuple(extra_args)
        self.env = {**os.environ, **(env or {})}
        self.log_path = self.data_dir / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "ca.pem"

    def _base(self) -> list[str]:
        return [*HQ, "--db", self.db_url, "--data-dir", str(self.data_dir)]

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run an HQ CLI command against the same database and data directory."""
        return subprocess.run([*self._base(), *args], capture_output=True, text=True, timeout=timeout,
                              cwd=ROOT, env=self.env)

    def start(self) -> HqServer:
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("HQ is already running")
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed right after
        try:
            self.proc = subprocess.Popen(
                [*self._base(), "serve", "--host", "127.0.0.1", "--port", str(self.port), *self.extra_args],
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=self.env,
            )
        finally:
            log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"HQ exited with code {self.proc.returncode} while starting:\n{self.log()}")
            try:
                self._tls_handshake()
                return
            except (OSError, ssl.SSLError) as exc:
                last_error = exc
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"HQ did not accept TLS on port {self.port} within {START_TIMEOUT_S:.0f} s "
                           f"({last_error}):\n{self.log()}")

    def _tls_handshake(self) -> None:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1"):
            pass

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM and wait: a clean shutdown flushes heartbeat state. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> HqServer:
        try:
            return self.start()
        except BaseException:
            self._cleanup()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
        self._cleanup()

    def _cleanup(self) -> None:
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
