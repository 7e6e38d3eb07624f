"""POST /v1/heartbeat: the fleet's hot path, answered from memory (no database write per beat).

It runs once per PC every few seconds across the whole fleet, so it is a plain Starlette route:
FastAPI's per-request dependency and response machinery measured ~40 us, a tenth of a signed
heartbeat (bench/bench_hq.py). It raises the same ApiError as every route (the app's exception
handlers turn it into the error body) and hq.api.openapi documents it like the others.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hq.api.deps import HEARTBEAT_MAX_BYTES, authenticate, parse_body, state_of
from hq.api.models import HeartbeatIn, HeartbeatOut
from hq.api.openapi import SIGNED_ERRORS, document_route

PATH = "/v1/heartbeat"


async def heartbeat(request: Request) -> Response:
    signed = await authenticate(request, HEARTBEAT_MAX_BYTES)
    beat = parse_body(HeartbeatIn, signed.body)
    state = state_of(request)
    now = time.time()
    state.live.record_heartbeat(signed.device, beat.columns(), now=now)
    # The HeartbeatOut shape, written out by hand: three numbers need no JSON encoder.
    content = (
        f'{{"server_time":{now!r},"policy_version":{state.policies.current.version},'
        f'"heartbeat_interval_s":{state.settings.heartbeat_interval_s!r}}}'
    )
    return Response(content=content.encode(), media_type="application/json")


route = Route(PATH, heartbeat, methods=["POST"], include_in_schema=False)
document_route(
    PATH,
    "post",
    summary="Heartbeat",
    request_model=HeartbeatIn,
    response_model=HeartbeatOut,
    errors=SIGNED_ERRORS,
)
