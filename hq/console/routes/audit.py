"""The audit log: analyst actions in the console, and the server's own trail (enrollments, refusals, CLI)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from hq.console.actions import list_actions
from hq.console.web import PREFIX, Ctx, Viewer, render
from hq.store.audit import list_audit

router = APIRouter(prefix=PREFIX, include_in_schema=False)
LIMIT = 200


def _audit(ctx: Ctx, analyst: str | None, action: str | None) -> dict[str, Any]:
    with ctx.hq.sessions() as session:
        return {
            "actions": list_actions(session, analyst_id=analyst, action=action, limit=LIMIT),
            "server": list(reversed(list_audit(session, limit=LIMIT))),
            "analyst": analyst or "",
            "action": action or "",
        }


@router.get("/audit")
async def audit_log(request: Request, _who: Viewer, ctx: Ctx, analyst: str | None = None,
                    action: str | None = None) -> Response:
    context = await run_in_threadpool(_audit, ctx, (analyst or "")[:64] or None, (action or "")[:64] or None)
    return render(request, "audit.html", context)
