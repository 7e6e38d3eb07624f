"""POST /v1/enroll: the only unauthenticated route."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from hq.api.deps import EnrollBody, State, json_response, parse_body, remote_addr
from hq.api.errors import ApiError
from hq.api.models import EnrollIn, EnrollOut
from hq.api.openapi import errors, request_body
from hq.enrollment import BadProof, Enrolled, InvalidToken, check_proof, enroll_device
from hq.state import HqState
from hq.store.audit import OUTCOME_DENIED, OUTCOME_OK

router = APIRouter()


async def _enroll(state: HqState, data: EnrollIn, now: float) -> Enrolled:
    check_proof(token=data.token, public_key=data.public_key, proof=data.proof)
    return await run_in_threadpool(
        enroll_device,
        state.sessions,
        token=data.token,
        public_key=data.public_key,
        hostname=data.hostname,
        os=data.os,
        agent_version=data.agent_version,
        now=now,
    )


@router.post(
    "/v1/enroll",
    response_model=EnrollOut,
    responses=errors(400, 403, 413, 422),
    openapi_extra=request_body(EnrollIn),
)
async def enroll(request: Request, body: EnrollBody, state: State) -> JSONResponse:
    data = parse_body(EnrollIn, body)
    now = time.time()
    where = {"remote_addr": remote_addr(request), "path": request.url.path}
    try:
        enrolled = await _enroll(state, data, now)
    except BadProof as exc:
        state.audit.add(action="enroll", outcome=OUTCOME_DENIED, reason="bad_proof", detail=str(exc), now=now, **where)
        raise ApiError(400, "bad_proof", str(exc)) from None
    except InvalidToken as exc:
        state.audit.add(action="enroll", outcome=OUTCOME_DENIED, reason=exc.reason, now=now, **where)
        raise ApiError(403, "invalid_token", "the enrollment token is invalid, expired or used up") from None
    state.live.forget_unknown(enrolled.device_id)
    state.audit.add(
        action="enroll",
        outcome=OUTCOME_OK,
        device_id=enrolled.device_id,
        detail=f"outlet {enrolled.outlet_id}",
        now=now,
        **where,
    )
    return json_response(
        EnrollOut(
            device_id=enrolled.device_id,
            outlet_id=enrolled.outlet_id,
            policy_public_key=state.policy_public_key,
            heartbeat_interval_s=state.settings.heartbeat_interval_s,
            server_time=time.time(),
        )
    )
