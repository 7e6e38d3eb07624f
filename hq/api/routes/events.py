"""POST /v1/events: idempotent batch ingest; the answer is sent only after the commit."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from hq.api.deps import EVENTS_MAX_BYTES, SignedEvents, State, json_response
from hq.api.errors import ApiError, invalid_body
from hq.api.models import MAX_EVENTS_PER_BATCH, EventsIn, EventsOut
from hq.api.openapi import SIGNED_ERRORS, request_body
from hq.binding.install import after_events
from hq.store.events import ORIGIN_AGENT, insert_events

router = APIRouter()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_batch(body: bytes) -> EventsIn:
    """413 for too many events comes before field checks, so the agent's halving works on any batch."""
    try:
        raw = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than the parser goes
        raise ApiError(422, "invalid_request", f"body: not valid JSON ({exc})") from None
    events = raw.get("events") if isinstance(raw, dict) else None
    if isinstance(events, list) and len(events) > MAX_EVENTS_PER_BATCH:
        raise ApiError(
            413, "too_large", f"events: {len(events)} events in one batch, at most {MAX_EVENTS_PER_BATCH} allowed"
        )
    try:
        return EventsIn.model_validate(raw)
    except ValidationError as exc:
        raise invalid_body(exc) from None


@router.post(
    "/v1/events",
    response_model=EventsOut,
    responses=SIGNED_ERRORS,
    openapi_extra=request_body(EventsIn),
    description=f"At most {MAX_EVENTS_PER_BATCH} events and {EVENTS_MAX_BYTES} bytes per batch.",
)
def events(request: Request, signed: SignedEvents, state: State) -> JSONResponse:
    batch = parse_batch(signed.body)
    wire = [event.model_dump() for event in batch.events]
    with state.sessions.begin() as session:
        accepted = insert_events(
            session, device_id=signed.device.device_id, events=wire, received_at=time.time(), origin=ORIGIN_AGENT
        )
    after_events(request.app, signed.device.device_id, wire)  # acknowledgements, sign-outs, remote tools
    return json_response(EventsOut(accepted=accepted, duplicates=len(wire) - accepted, server_time=time.time()))
