"""GET /v1/policy: the latest signed policy, from memory."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from hq.api.deps import SignedEmpty, State
from hq.api.models import PolicyOut
from hq.api.openapi import errors

router = APIRouter()


@router.get("/v1/policy", response_model=PolicyOut, responses=errors(401, 429))
async def policy(_signed: SignedEmpty, state: State) -> JSONResponse:
    served = state.policies.current
    return JSONResponse({"policy": served.document, "signature": served.signature, "server_time": time.time()})
