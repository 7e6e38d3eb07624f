"""The local binding endpoint for the waybill web page: POST http://127.0.0.1:PORT/v1/proof.

Browsers cannot reach the local channel, so the agent also answers proofs on loopback, under
these rules (docs/binding.md): port and allowed origins from policy (off when the port is 0);
loopback only; the Host header must name loopback (no DNS rebinding); a request with an Origin
must carry an allowed one, and must be JSON (so a cross-site page is stopped by the CORS
preflight); the TCP peer must belong to the console user or root/SYSTEM. Nothing about the
request (its URL may carry waybill numbers) is logged.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agent.binding.manager import BindingError, BindingManager
from agent.binding.peer import PeerCheck
from agent.localchannel import ops

log = logging.getLogger(__name__)

PROOF_PATH = "/v1/proof"
MAX_BODY_BYTES = 4096
RETRY_BIND_S = 30.0
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
ERROR_STATUS = {ops.ERR_NOT_SIGNED_IN: 401, ops.ERR_POLICY_ACK_REQUIRED: 403, ops.ERR_SESSION_EXPIRED: 401,
                ops.ERR_INVALID_ARGUMENT: 400}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, port: int, origins: tuple[str, ...], manager: BindingManager, peer_ok: PeerCheck) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.origins = frozenset(origins)
        self.manager = manager
        self.peer_ok = peer_ok
        self.hosts = frozenset(f"{host}:{self.server_address[1]}" for host in LOOPBACK_HOSTS)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "TerminalGuard"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged: their URLs and bodies may name waybills."""

    def _send(self, status: int, body: dict[str, Any], origin: str | None = None,
              extra: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        if origin is not None:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Vary", "Origin")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self, status: int, code: str, detail: str) -> None:
        self._send(status, {"error": code, "detail": detail})

    def _gate(self) -> tuple[bool, str | None]:
        """Host, origin and OS-user checks shared by preflight and POST; (passed, allowed origin)."""
        if self.headers.get("Host", "").lower() not in self.server.hosts:
            self._refuse(403, "bad_host", "the Host header must name 127.0.0.1 or localhost with this port")
            return False, None
        origin = self.headers.get("Origin")
        if origin is not None and origin not in self.server.origins:
            self._refuse(403, "origin_not_allowed", "this web origin is not allowed by HQ policy")
            return False, None
        if not self.server.peer_ok(self.server.server_address[1], self.client_address[1]):
            self._refuse(403, "forbidden", "only the console user of this PC may ask for proofs")
            return False, None
        return True, origin

    def do_OPTIONS(self) -> None:
        passed, origin = self._gate()
        if not passed:
            return
        extra = {"Access-Control-Allow-Methods": "POST", "Access-Control-Allow-Headers": "Content-Type",
                 "Access-Control-Max-Age": "600"}
        if self.headers.get("Access-Control-Request-Private-Network") == "true":
            extra["Access-Control-Allow-Private-Network"] = "true"
        self._send(204 if origin else 200, {}, origin, extra)

    def do_POST(self) -> None:
        if self.path != PROOF_PATH:
            self._refuse(404, "not_found", f"the only endpoint is POST {PROOF_PATH}")
            return
        passed, origin = self._gate()
        if not passed:
            return
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            self._refuse(415, "json_required", "send Content-Type: application/json")
            return
        length = self.headers.get("Content-Length", "")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            self._refuse(413, "too_large", f"a JSON body {{method, url}} of at most {MAX_BODY_BYTES} bytes")
            return
        try:
            body = json.loads(self.rfile.read(int(length)))
            method, url = body["method"], body["url"]
            if not isinstance(method, str) or not isinstance(url, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            self._refuse(400, "invalid_argument", 'expected {"method": "GET", "url": "https://..."}')
            return
        try:
            result = self.server.manager.proof(method, url)
        except BindingError as exc:
            self._send(ERROR_STATUS.get(exc.code, 409), {"error": exc.code, "detail": exc.detail}, origin)
            return
        self._send(200, result, origin)

    def do_GET(self) -> None:
        self._refuse(405, "method_not_allowed", f"use POST {PROOF_PATH}")


class LoopbackEndpoint:
    """Started, moved or stopped as the policy's port and origins change."""

    def __init__(self, manager: BindingManager, peer_ok: PeerCheck) -> None:
        self._manager = manager
        self._peer_ok = peer_ok
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._config: tuple[int, tuple[str, ...]] = (0, ())
        self._failed_at: float | None = None

    @property
    def port(self) -> int | None:
        return self._server.server_address[1] if self._server else None

    def apply(self, port: int, origins: tuple[str, ...]) -> None:
        if (port, origins) == self._config and (self._server is not None or port == 0):
            return
        if (port, origins) == self._config and self._failed_at is not None \
                and time.monotonic() - self._failed_at < RETRY_BIND_S:
            return
        self.stop()
        self._config = (port, origins)
        if port == 0:
            return
        try:
            self._server = _Server(port, origins, self._manager, self._peer_ok)
        except OSError as exc:
            self._failed_at = time.monotonic()
            log.error("binding endpoint cannot listen on 127.0.0.1:%d (retrying every %.0f s): %s", port,
                      RETRY_BIND_S, exc)
            return
        self._failed_at = None
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.25},
                                        name="tg-binding-http", daemon=True)
        self._thread.start()
        log.info("binding endpoint on http://127.0.0.1:%d%s for %d allowed origin(s)", port, PROOF_PATH, len(origins))

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
