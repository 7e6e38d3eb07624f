"""Request bodies have a deadline (408 body_timeout), and a body still on its way holds no
--max-inflight slot: a stranger trickling bytes cannot keep honest devices out."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from hq.api import deps, inflight
from hq.api.deps import read_body
from hq.api.errors import ApiError
from hq.api.inflight import InflightLimit

SCOPE: Scope = {"type": "http", "method": "POST", "path": "/v1/events", "headers": [], "query_string": b""}


def trickle(*chunks: bytes, then_hang: bool = False) -> Receive:
    """A client sending ``chunks``, then hanging for ever (``then_hang``) or ending the body."""
    pending = list(chunks)

    async def receive() -> Message:
        if pending:
            return {"type": "http.request", "body": pending.pop(0), "more_body": bool(pending) or then_hang}
        if then_hang:
            await anyio.sleep_forever()
        return {"type": "http.disconnect"}

    return receive


class Answers:
    """An ASGI send that keeps the status and the JSON body of the answer."""

    def __init__(self) -> None:
        self.status = 0
        self.body: dict[str, Any] = {}

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message.get("body"):
            self.body = json.loads(message["body"])


def echo_app(gate: anyio.Event | None = None) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """Reads the body the way the routes do, optionally waits at ``gate``, answers 200 with it."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(Request(scope, receive), 1024)
        if gate is not None:
            await gate.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": json.dumps({"body": body.decode()}).encode()})

    return app


def test_a_body_that_stops_arriving_is_refused_with_408(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deps, "BODY_TIMEOUT_S", 0.2)

    async def main() -> ApiError:
        with pytest.raises(ApiError) as caught:
            await read_body(Request(SCOPE, trickle(b"{", then_hang=True)), 1024)
        return caught.value

    error = anyio.run(main)
    assert (error.status, error.code) == (408, "body_timeout")


def test_a_trickling_body_holds_no_inflight_slot_and_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inflight, "BODY_TIMEOUT_S", 0.5)
    guard = InflightLimit(echo_app(), limit=1)
    slow, honest = Answers(), Answers()

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(guard, SCOPE, trickle(b"{", then_hang=True), slow)
            await anyio.sleep(0.05)
            await guard(SCOPE, trickle(b'{"a":', b" 1}"), honest)
            assert (honest.status, honest.body) == (200, {"body": '{"a": 1}'}), "the stranger took the only slot"

    anyio.run(main)
    assert (slow.status, slow.body["error"]) == (408, "body_timeout")
    assert guard.inflight == 0


def test_requests_whose_bodies_arrived_still_count_against_the_limit() -> None:
    gate = anyio.Event()
    guard = InflightLimit(echo_app(gate), limit=1)
    first, second = Answers(), Answers()

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(guard, SCOPE, trickle(b"{}"), first)
            await anyio.sleep(0.05)
            await guard(SCOPE, trickle(b"{}"), second)
            gate.set()

    anyio.run(main)
    assert (first.status, second.status, second.body["error"]) == (200, 429, "busy")
