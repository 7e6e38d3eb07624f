"""A plain ASGI guard: past max_inflight concurrent requests, answer 429 with Retry-After.

Pure ASGI rather than BaseHTTPMiddleware: it sits on every request, so it must cost nothing.
It runs on the event loop only, so the counter needs no lock.

A request counts only once its body has arrived. Bodies are read before any signature is
checked, so if a request counted while its body trickled in, a stranger sending a byte a second
on max_inflight connections would make HQ answer 429 to every honest device. So the guard reads
the body first, within the same deadline as the routes (BODY_TIMEOUT_S, then 408), and replays it
to the app. It buffers at most the largest body any route takes; past that the rest streams to
the app, which refuses it by its own route's limit. What waits for a body costs memory, not a
slot, and within the deadline no more than the sender's bandwidth can fill.
"""

from __future__ import annotations

import json
import time
from collections import deque

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hq.api.deadline import Deadline
from hq.api.deps import BODY_TIMEOUT_S, EVENTS_MAX_BYTES

RETRY_AFTER_S = 1
BUFFER_MAX_BYTES = EVENTS_MAX_BYTES


class InflightLimit:
    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self._app = app
        self._limit = limit
        self.inflight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if self.inflight >= self._limit:  # busy already: refuse before reading a body
            await self._busy(send)
            return
        try:
            with Deadline(BODY_TIMEOUT_S):
                arrived = await _arrived(receive)
        except TimeoutError:
            await _answer(send, 408, "body_timeout", f"the request body did not arrive within {BODY_TIMEOUT_S:.0f} s")
            return
        if self.inflight >= self._limit:
            await self._busy(send)
            return
        self.inflight += 1
        try:
            await self._app(scope, _replay(arrived, receive), send)
        finally:
            self.inflight -= 1

    async def _busy(self, send: Send) -> None:
        await _answer(send, 429, "busy", "HQ is at its request limit; retry later",
                      [(b"retry-after", str(RETRY_AFTER_S).encode())])


async def _arrived(receive: Receive) -> deque[Message]:
    """The request's messages up to the end of its body (or BUFFER_MAX_BYTES, or a disconnect)."""
    messages: deque[Message] = deque()
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages
        size += len(message.get("body", b""))
        if not message.get("more_body", False) or size > BUFFER_MAX_BYTES:
            return messages


def _replay(arrived: deque[Message], receive: Receive) -> Receive:
    async def replayed() -> Message:
        return arrived.popleft() if arrived else await receive()

    return replayed


async def _answer(send: Send, status: int, code: str, detail: str,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": code, "detail": detail, "server_time": time.time()}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
