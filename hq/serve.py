"""`terminal-guard-hq serve`: HTTPS with uvicorn, a CA of our own unless given a certificate."""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path
from types import FrameType

import uvicorn

from hq.app import create_app
from hq.settings import Settings
from hq.tls import ensure_tls


class ServeError(RuntimeError):
    pass


class _Server(uvicorn.Server):
    """Prints the one line scripts wait for, once the socket really listens."""

    def __init__(self, config: uvicorn.Config, announce: str) -> None:
        super().__init__(config)
        self._announce = announce

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        # A stop that was asked for and completes cleanly exits 0; uvicorn would re-raise the signal.
        self._captured_signals.clear()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            print(self._announce, flush=True)


def url_for(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"https://{shown}:{port}"


def _certificate(settings: Settings, host: str, cert: Path | None, key: Path | None) -> tuple[Path, Path, str]:
    if (cert is None) != (key is None):
        raise ServeError("--cert and --key go together: give both or neither")
    if cert is not None and key is not None:
        for path in (cert, key):
            if not path.is_file():
                raise ServeError(f"{path}: no such certificate or key file")
        return cert, key, f"certificate {cert}"
    files = ensure_tls(settings.data_dir, host)
    return files.server_cert, files.server_key, f"CA {files.ca_cert}"


def serve(settings: Settings, *, host: str, port: int, cert: Path | None = None, key: Path | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cert_file, key_file, trust = _certificate(settings, host, cert, key)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(cert_file),
        ssl_keyfile=str(key_file),
        http="httptools",
        loop="uvloop",
        access_log=False,  # a line per heartbeat would be the busiest writer on the box
        server_header=False,
        # Audit records name the peer that connected; X-Forwarded-For is not trusted by default.
        proxy_headers=False,
        timeout_graceful_shutdown=5,
        log_level="info",
    )
    server = _Server(config, f"HQ listening on {url_for(host, port)} ({trust})")
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits 1 when it cannot bind
        raise ServeError(f"could not serve on {host}:{port} (see the log above)") from exc
    if not server.started:
        raise ServeError(f"could not serve on {host}:{port} (see the log above)")
    return 0
