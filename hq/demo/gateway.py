"""The demo gateway: every waybill request is verified with HQ before it reaches the app.

    GET /outlets/{outlet}/waybills/{number}   X-TG-Session + X-TG-Proof (from `terminal-guard proof`)

The request acts for ``{outlet}``: HQ denies it unless the session is bound to that outlet. An
allowed request is forwarded; the app's ``X-Waybill-Outlet`` (whose waybill it was) is reported
to HQ for the other-outlet baseline and removed from the answer.
"""

from __future__ import annotations

import urllib3
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hq.binding.gateway import GatewayVerifier

WAYBILL_OUTLET = "X-Waybill-Outlet"


def create_gateway(*, verifier: GatewayVerifier, app_url: str, public_url: str) -> Starlette:
    upstream = urllib3.PoolManager(maxsize=32, retries=False, timeout=urllib3.Timeout(connect=2.0, read=5.0))
    app_base = app_url.rstrip("/")
    public_base = public_url.rstrip("/")

    def waybill(request: Request) -> Response:  # sync: Starlette runs it in its threadpool
        outlet = request.path_params["outlet"]
        decision = verifier.verify(request.method, public_base + request.url.path, request.headers, outlet=outlet)
        if not decision.allow:
            return JSONResponse({"error": "binding_denied", "reason": decision.reason, "detail": decision.detail},
                                status_code=403)
        answer = upstream.request("GET", app_base + request.url.path)
        owner = answer.headers.get(WAYBILL_OUTLET)
        if owner:
            verifier.report_query(decision, waybill_outlet=owner)
        return Response(answer.data, status_code=answer.status, media_type="application/json")

    def health(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/outlets/{outlet}/waybills/{number}", waybill), Route("/health", health)])
