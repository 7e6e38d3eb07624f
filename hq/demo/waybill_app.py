"""The demo's business system: look up a waybill; each waybill belongs to one outlet.

It answers whoever asks: access control is the gateway's job. Waybills carry no customer data at
all (a number, an owning outlet, a status), so nothing in the demo can leak any. The owning
outlet comes back in ``X-Waybill-Outlet`` for the gateway to report to HQ.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

STATUSES = ("received", "in transit", "at outlet", "delivered")


def waybill_number(outlet_index: int, seq: int) -> str:
    return f"WB{outlet_index:02d}{seq:08d}"


def build_index(outlets: Sequence[str], per_outlet: int) -> dict[str, str]:
    """waybill number -> owning outlet."""
    return {waybill_number(i, seq): outlet for i, outlet in enumerate(outlets) for seq in range(per_outlet)}


def create_app(outlets: Sequence[str], per_outlet: int) -> Starlette:
    index = build_index(outlets, per_outlet)

    async def lookup(request: Request) -> JSONResponse:
        number = request.path_params["number"]
        owner = index.get(number)
        if owner is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        status = STATUSES[int(number[-1]) % len(STATUSES)]
        return JSONResponse({"waybill": number, "status": status}, headers={"X-Waybill-Outlet": owner})

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"waybills": len(index)})

    return Starlette(routes=[Route("/outlets/{outlet}/waybills/{number}", lookup), Route("/health", health)])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m hq.demo.waybill_app", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--outlets", default="o1,o2,o3", help="comma-separated outlet ids")
    parser.add_argument("--per-outlet", type=int, default=1000, help="waybills per outlet")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    app = create_app([o for o in args.outlets.split(",") if o], args.per_outlet)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
