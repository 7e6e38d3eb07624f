"""Route dependencies: the HQ state, a size-capped body, and a verified signed request."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from hq.api.deadline import Deadline
from hq.api.errors import ApiError, invalid_body
from hq.auth import AuthError
from hq.heartbeats import LiveDevice
from hq.state import HqState
from hq.store.audit import OUTCOME_DENIED

ENROLL_MAX_BYTES = 16 * 1024
HEARTBEAT_MAX_BYTES = 64 * 1024
EVENTS_MAX_BYTES = 1024 * 1024
EMPTY_MAX_BYTES = 4 * 1024
# The longest HQ waits for a request body. The body is read before the signature is checked, so
# without a deadline anyone could hold a connection and its task for ever by sending a byte a
# second. 30 s lets a full 1 MB batch through at about 280 kbit/s or faster.
BODY_TIMEOUT_S = 30.0

ModelT = TypeVar("ModelT", bound=BaseModel)


async def get_state(request: Request) -> HqState:
    # async on purpose: FastAPI runs a plain `def` dependency in the threadpool, a thread hop
    # per request for what is an attribute lookup.
    return state_of(request)


def state_of(request: Request) -> HqState:
    state: HqState = request.app.state.hq
    return state


State = Annotated[HqState, Depends(get_state)]


def remote_addr(request: Request) -> str | None:
    return request.client.host if request.client else None


def too_large(limit: int) -> ApiError:
    return ApiError(413, "too_large", f"request body is larger than {limit} bytes; send less per request")


def body_timeout() -> ApiError:
    return ApiError(408, "body_timeout", f"the request body did not arrive within {BODY_TIMEOUT_S:.0f} s")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused early by Content-Length and again by the bytes actually read; 408 when
    it does not arrive within BODY_TIMEOUT_S."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "bad_request", "Content-Length: expected a non-negative integer")
        if int(declared) > limit:
            raise too_large(limit)
    body = bytearray()
    try:
        with Deadline(BODY_TIMEOUT_S):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise too_large(limit)
    except TimeoutError:
        raise body_timeout() from None
    if b"\\u0000" in body:
        # PostgreSQL stores no NUL in text or JSONB: one such string would fail its insert (a 500),
        # or, in a heartbeat, every later flush of the batch it sits in.
        raise ApiError(422, "invalid_request", "body: contains a NUL character (\\u0000), which HQ does not store")
    return bytes(body)


def body_reader(limit: int) -> Callable[[Request], Awaitable[bytes]]:
    async def dependency(request: Request) -> bytes:
        return await read_body(request, limit)

    return dependency


def parse_body(model: type[ModelT], body: bytes) -> ModelT:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise invalid_body(exc) from None


@dataclass(frozen=True, slots=True)
class SignedRequest:
    device: LiveDevice
    body: bytes


def signed_path(request: Request) -> str:
    """The path the device signed: URL path plus ?query when there is one."""
    query = request.scope.get("query_string", b"")
    path: str = request.scope["path"]
    return f"{path}?{query.decode('latin-1')}" if query else path


async def authenticate(request: Request, limit: int) -> SignedRequest:
    """Read the body (at most ``limit`` bytes) and verify the signed request; 401 and audit on failure."""
    state = state_of(request)
    body = await read_body(request, limit)
    now = time.time()
    path = signed_path(request)
    try:
        device = await state.verifier.verify(
            headers=request.headers, method=request.method, path=path, body=body, now=now
        )
    except AuthError as exc:
        state.audit.add(
            action="signed_request",
            outcome=OUTCOME_DENIED,
            reason=exc.code,
            device_id=exc.device_id,
            remote_addr=remote_addr(request),
            path=path,
            detail=exc.detail,
            now=now,
        )
        raise ApiError(401, exc.code, exc.detail) from None
    return SignedRequest(device=device, body=body)


def signed_request(limit: int) -> Callable[[Request], Awaitable[SignedRequest]]:
    async def dependency(request: Request) -> SignedRequest:
        return await authenticate(request, limit)

    return dependency


SignedEvents = Annotated[SignedRequest, Depends(signed_request(EVENTS_MAX_BYTES))]
SignedEmpty = Annotated[SignedRequest, Depends(signed_request(EMPTY_MAX_BYTES))]
EnrollBody = Annotated[bytes, Depends(body_reader(ENROLL_MAX_BYTES))]


def json_response(model: BaseModel) -> JSONResponse:
    """Serialise through the response model, so only its declared fields ever go out."""
    return JSONResponse(model.model_dump(mode="json"))
