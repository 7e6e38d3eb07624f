"""POST /v1/unenroll: an uninstalling agent retires its own device."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from agent.events import PRIORITY_MEDIUM
from hq.api.deps import SignedEmpty, State, json_response, remote_addr
from hq.api.models import UnenrollOut
from hq.api.openapi import errors
from hq.store.audit import OUTCOME_OK
from hq.store.devices import revoke_device
from hq.store.events import record_hq_event

router = APIRouter()


@router.post("/v1/unenroll", response_model=UnenrollOut, responses=errors(401, 429))
def unenroll(request: Request, signed: SignedEmpty, state: State) -> JSONResponse:
    device_id = signed.device.device_id
    now = time.time()
    with state.sessions.begin() as session:
        revoke_device(session, device_id=device_id, reason="uninstalled", now=now)
        record_hq_event(
            session,
            device_id=device_id,
            kind="device.unenrolled",
            body={"device_id": device_id, "reason": "uninstalled"},
            now=now,
            priority=PRIORITY_MEDIUM,
        )
    state.live.mark_revoked([device_id])
    state.audit.add(
        action="unenroll", outcome=OUTCOME_OK, device_id=device_id, remote_addr=remote_addr(request),
        path=request.url.path, now=now,
    )
    return json_response(UnenrollOut(device_id=device_id, server_time=time.time()))
