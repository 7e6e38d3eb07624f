"""Verification for the business system's gateway: POST /v1/verify (JSON), GET /v1/verify (headers,
for nginx auth_request) and POST /v1/activity (which outlet each served waybill belonged to).

Every call carries a gateway API key (``X-TG-Gateway-Key`` or ``Authorization: Bearer``) made with
``terminal-guard-hq gateway-key create``. These are plain Starlette routes like the heartbeat: they
sit on the business system's request path, so FastAPI's per-request machinery is left out, and
the two verify routes are called as plain ASGI (see _PlainEndpoint).
A deny is an answer, not an error: POST answers 200 with decision "deny"; GET answers 403 (nginx
turns it into the client's 403) with the reason in X-TG-Reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from agent.binding.proof import HEADER_PROOF, HEADER_SESSION
from hq.api.deps import parse_body, read_body, remote_addr
from hq.api.errors import ApiError
from hq.api.openapi import document_route, errors
from hq.binding.api_models import ActivityIn, ActivityOut, VerifyIn, VerifyOut
from hq.binding.install import binding_of
from hq.binding.service import BindingService
from hq.binding.verify import Decision, VerifyQuery
from hq.store.audit import OUTCOME_DENIED

VERIFY_PATH = "/v1/verify"
ACTIVITY_PATH = "/v1/activity"
HEADER_GATEWAY_KEY = "x-tg-gateway-key"
VERIFY_MAX_BYTES = 16 * 1024
ACTIVITY_MAX_BYTES = 1024 * 1024
MAX_ALLOW_HEADS = 100_000
_ALLOW_HEADS: dict[tuple[str | int | None, ...], bytes] = {}

# An answer: status, headers besides content-type and content-length, JSON body.
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


class _PlainEndpoint:
    """A route endpoint Starlette calls as plain ASGI (it does so for any endpoint that is not a
    function): no Response object and no per-request exception-handling closure, ~4 µs of the
    ~70 that verify costs besides its signature. An ApiError raised by ``handle`` still reaches
    the app's exception handlers, which answer with the usual error body."""

    def __init__(self, handle: Callable[[Request], Awaitable[Answer]]) -> None:
        self._handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, headers, body = await self._handle(Request(scope, receive))
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
                                *headers]})
        await send({"type": "http.response.body", "body": body})


def _presented_key(request: Request) -> str | None:
    key = request.headers.get(HEADER_GATEWAY_KEY)
    if key:
        return key
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth[:7].lower() == "bearer " else None


async def _gateway(request: Request) -> tuple[BindingService, str]:
    """The binding service and the calling gateway's name; 401 (audited) without a valid key."""
    service = binding_of(request.app)
    key = _presented_key(request)
    name = service.gateways.name_of(key)
    if name is None and key and service.gateways.should_reload():
        await anyio.to_thread.run_sync(service.gateways.reload)
        name = service.gateways.name_of(key)
    if name is None:
        service.hq.audit.add(action="gateway", outcome=OUTCOME_DENIED, reason="bad_gateway_key",
                             remote_addr=remote_addr(request), path=request.url.path, now=time.time())
        raise ApiError(401, "bad_gateway_key", "a valid gateway key is required (terminal-guard-hq gateway-key create)")
    return service, name


def _answer(decision: Decision) -> bytes:
    if not decision.allow:
        body = decision.public()
        body["server_time"] = time.time()
        return json.dumps(body, separators=(",", ":")).encode()
    # An allow answer differs from the session's previous one only in server_time, so the rest
    # is encoded once per session (json.dumps is a tenth of verify's own work otherwise).
    key = (decision.reason, decision.detail, decision.staff, decision.device, decision.outlet, decision.sid,
           decision.expires_at)
    head = _ALLOW_HEADS.get(key)
    if head is None:
        if len(_ALLOW_HEADS) >= MAX_ALLOW_HEADS:
            _ALLOW_HEADS.clear()
        head = _ALLOW_HEADS[key] = json.dumps(decision.public(), separators=(",", ":")).encode()[:-1]
    return b"%s,\"server_time\":%r}" % (head, time.time())


async def verify_post(request: Request) -> Answer:
    service, _name = await _gateway(request)
    data = parse_body(VerifyIn, await read_body(request, VERIFY_MAX_BYTES))
    query = VerifyQuery(method=data.method, url=data.url, token=data.session, proof=data.proof, account=data.account,
                        outlet=data.outlet, waybill_outlet=data.waybill_outlet)
    decision = await service.decide(query)
    return 200, [], _answer(decision)


def _header(request: Request, name: str, limit: int) -> str | None:
    value = request.headers.get(name)
    if value is None or value == "":
        return None
    if len(value) > limit:
        raise ApiError(400, "bad_request", f"header {name}: longer than {limit} characters")
    return value


async def verify_get(request: Request) -> Answer:
    """nginx auth_request: the original request's method and URL come as X-Original-Method/-URL."""
    service, _name = await _gateway(request)
    method = _header(request, "x-original-method", 16)
    url = _header(request, "x-original-url", 2048)
    if method is None or url is None:
        raise ApiError(400, "bad_request", "headers X-Original-Method and X-Original-URL are required")
    query = VerifyQuery(method=method, url=url, token=_header(request, HEADER_SESSION, 2048),
                        proof=_header(request, HEADER_PROOF, 2048), account=_header(request, "x-tg-account", 64),
                        outlet=_header(request, "x-tg-outlet", 64),
                        waybill_outlet=_header(request, "x-tg-waybill-outlet", 64))
    decision = await service.decide(query)
    headers = [(b"x-tg-decision", b"allow" if decision.allow else b"deny"),
               (b"x-tg-reason", decision.reason.encode("latin-1"))]
    for name, value in ((b"x-tg-staff", decision.staff), (b"x-tg-device", decision.device),
                        (b"x-tg-outlet", decision.outlet), (b"x-tg-session-id", decision.sid)):
        if value:
            headers.append((name, value.encode("latin-1")))
    return 200 if decision.allow else 403, headers, _answer(decision)


async def activity(request: Request) -> Response:
    service, _name = await _gateway(request)
    data = parse_body(ActivityIn, await read_body(request, ACTIVITY_MAX_BYTES))
    now = time.time()
    for report in data.queries:
        # A report's own time is trusted only within the last hour (it feeds the hour window).
        at = report.at if report.at is not None and now - 3600 <= report.at <= now + 5 else now
        service.tracker.on_query(staff=report.staff, device=report.device, outlet=report.outlet,
                                 waybill_outlet=report.waybill_outlet, now=at)
    body = ActivityOut(accepted=len(data.queries), server_time=time.time()).model_dump()
    return Response(json.dumps(body).encode(), media_type="application/json")


routes = [
    Route(VERIFY_PATH, _PlainEndpoint(verify_post), methods=["POST"], include_in_schema=False),
    Route(VERIFY_PATH, _PlainEndpoint(verify_get), methods=["GET"], include_in_schema=False),
    Route(ACTIVITY_PATH, activity, methods=["POST"], include_in_schema=False),
]
GATEWAY_ERRORS = errors(400, 401, 413, 422)
document_route(VERIFY_PATH, "post", summary="Verify", request_model=VerifyIn, response_model=VerifyOut,
               errors=GATEWAY_ERRORS)
document_route(ACTIVITY_PATH, "post", summary="Activity", request_model=ActivityIn, response_model=ActivityOut,
               errors=GATEWAY_ERRORS)
