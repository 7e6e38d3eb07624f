"""Staff sessions on a PC: challenge, sign-in, refresh and sign-out (device-signed requests)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from hq.api.deps import SignedEmpty, SignedRequest, json_response, parse_body, signed_request
from hq.api.errors import ApiError
from hq.api.openapi import errors, request_body
from hq.binding.api_models import ChallengeOut, RefreshIn, SessionOut, SignInIn, SignOutIn, SignOutOut
from hq.binding.challenges import CHALLENGE_TTL_S
from hq.binding.install import binding_of
from hq.binding.issuer import Issued, Refused

router = APIRouter()
SESSION_MAX_BYTES = 16 * 1024
SignedSession = Annotated[SignedRequest, Depends(signed_request(SESSION_MAX_BYTES))]
REFUSALS = errors(400, 401, 403, 413, 422, 429)


def _answer(issued: Issued) -> JSONResponse:
    claims = issued.claims
    return json_response(SessionOut(token=issued.token, session_id=claims.sid, staff=claims.staff,
                                    outlet_id=claims.outlet, issued_at=claims.iat, expires_at=claims.exp,
                                    acknowledged=claims.ack, policy_hash=issued.policy_hash,
                                    server_time=time.time()))


@router.post("/v1/session/challenge", response_model=ChallengeOut, responses=errors(401, 429))
async def challenge(request: Request, signed: SignedEmpty) -> JSONResponse:
    now = time.time()
    value = binding_of(request.app).issuer.challenge(signed.device, now=now)
    return json_response(ChallengeOut(challenge=value, expires_in_s=CHALLENGE_TTL_S, server_time=now))


@router.post("/v1/session/signin", response_model=SessionOut, responses=REFUSALS,
             openapi_extra=request_body(SignInIn),
             description="Password check (argon2id, lockout), device-signed binding over a fresh challenge, "
                         "then a token bound to the device key (cnf.jkt).")
async def signin(request: Request, signed: SignedSession) -> JSONResponse:
    data = parse_body(SignInIn, signed.body)
    issuer = binding_of(request.app).issuer
    try:
        issued = await run_in_threadpool(issuer.sign_in, signed.device, data, now=time.time())
    except Refused as exc:
        raise ApiError(exc.status, exc.code, exc.detail) from None
    return _answer(issued)


@router.post("/v1/session/refresh", response_model=SessionOut, responses=REFUSALS,
             openapi_extra=request_body(RefreshIn),
             description="A new token for the same session; needs a fresh challenge signed by the bound device.")
async def refresh(request: Request, signed: SignedSession) -> JSONResponse:
    data = parse_body(RefreshIn, signed.body)
    issuer = binding_of(request.app).issuer
    try:
        issued = await run_in_threadpool(issuer.refresh, signed.device, data, now=time.time())
    except Refused as exc:
        raise ApiError(exc.status, exc.code, exc.detail) from None
    return _answer(issued)


@router.post("/v1/session/signout", response_model=SignOutOut, responses=REFUSALS,
             openapi_extra=request_body(SignOutIn))
async def signout(request: Request, signed: SignedSession) -> JSONResponse:
    data = parse_body(SignOutIn, signed.body)
    issuer = binding_of(request.app).issuer
    ended = await run_in_threadpool(issuer.sign_out, signed.device, sid=data.session_id, reason=data.reason,
                                    now=time.time())
    return json_response(SignOutOut(session_id=data.session_id, ended=ended, server_time=time.time()))
