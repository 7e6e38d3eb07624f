"""A real HTTP server on loopback that answers what a test tells it to (STYLE.md #4).

It stands in for HQ where a test needs HQ to misbehave on purpose: 500s, garbage, hangs, 429,
413, refusals. Tests of the real HQ use tests/hq_server.py instead.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.signing import sign_document


@dataclass
class Answer:
    status: int = 200
    body: bytes | dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def default_answer(method: str, path: str, body: bytes, policy_key: Ed25519PrivateKey | None = None) -> Answer:
    if path == "/v1/events":
        events = json.loads(body)["events"]
        return Answer(body={"accepted": len(events), "duplicates": 0, "server_time": time.time()})
    if path == "/v1/heartbeat":
        return Answer(body={"server_time": time.time(), "policy_version": None, "heartbeat_interval_s": 10})
    if path == "/v1/policy" and policy_key is not None:
        policy = {"version": 1, "issued_at": "2026-11-23T00:00:00Z", "body": {}}
        signature = sign_document(policy_key, policy)
        return Answer(body={"policy": policy, "signature": signature, "server_time": time.time()})
    return Answer(status=404, body={"error": "not_found", "detail": path})


class ScriptedHq:
    def __init__(self, *, policy_key: Ed25519PrivateKey | None = None) -> None:
        self.seen: list[Seen] = []
        self.script: dict[str, deque[Answer]] = {}
        self._policy_key = policy_key
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def then(self, path: str, *answers: Answer) -> None:
        with self._lock:
            self.script.setdefault(path, deque()).extend(answers)

    def requests_to(self, path: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path == path]

    def __enter__(self) -> ScriptedHq:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self, method: str, path: str, body: bytes) -> Answer:
        with self._lock:
            queue = self.script.get(path)
            if queue:
                return queue.popleft()
        return default_answer(method, path, body, self._policy_key)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        hq = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with hq._lock:
                    hq.seen.append(Seen(self.command, self.path, dict(self.headers), body))
                answer = hq._next(self.command, self.path, body)
                time.sleep(answer.delay_s)
                payload = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body or {}).encode()
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (timeout test)

            do_GET = do_POST = _serve

        return Handler
