"""GET /v1/noop: the unauthenticated ceiling the benchmark compares signed routes against.

Registered only when settings.bench_noop is set; a production HQ has no such route.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

router = APIRouter()


@router.get("/v1/noop", include_in_schema=False)
async def noop() -> JSONResponse:
    return JSONResponse({})
