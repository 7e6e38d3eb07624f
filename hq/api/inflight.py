"""A plain ASGI guard: past max_inflight concurrent requests, answer 429 with Retry-After.

Pure ASGI rather than BaseHTTPMiddleware: it sits on every request, so it must cost nothing.
It runs on the event loop only, so the counter needs no lock.
"""

from __future__ import annotations

import json
import time

from starlette.types import ASGIApp, Receive, Scope, Send

RETRY_AFTER_S = 1


class InflightLimit:
    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self._app = app
        self._limit = limit
        self.inflight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if self.inflight >= self._limit:
            await self._busy(send)
            return
        self.inflight += 1
        try:
            await self._app(scope, receive, send)
        finally:
            self.inflight -= 1

    async def _busy(self, send: Send) -> None:
        body = json.dumps(
            {"error": "busy", "detail": "HQ is at its request limit; retry later", "server_time": time.time()}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(RETRY_AFTER_S).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
