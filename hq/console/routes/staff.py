"""Credential-sharing cases, suspending / clearing a staff binding, and the acknowledgement register."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from hq.api.deps import remote_addr
from hq.console import actions
from hq.console.sharing import case_evidence, sharing_cases
from hq.console.staff_link import signed_in_staff
from hq.console.web import PREFIX, AnalystActing, ConsoleError, Ctx, Viewer, form_text, query_int, redirect, render

router = APIRouter(prefix=PREFIX, include_in_schema=False)
CASE_WINDOW_S = 30 * 86400.0
MAX_STAFF_ID = 64


def _cases(ctx: Ctx) -> dict[str, Any]:
    with ctx.hq.sessions() as session:
        cases = sharing_cases(session, since=time.time() - CASE_WINDOW_S)
        suspended = ctx.staff.suspended(session, [case.staff_id for case in cases])
    return {"cases": cases, "suspended": suspended, "staff_available": ctx.staff.available}


@router.get("/sharing")
async def cases(request: Request, _who: Viewer, ctx: Ctx) -> Response:
    return render(request, "sharing.html", await run_in_threadpool(_cases, ctx))


def _case(ctx: Ctx, staff_id: str) -> dict[str, Any]:
    with ctx.hq.sessions() as session:
        evidence = case_evidence(session, staff_id=staff_id)
        suspended = ctx.staff.suspended(session, [staff_id])
    return {"staff_id": staff_id, "evidence": evidence, "suspended": staff_id in suspended,
            "staff_available": ctx.staff.available, "back": f"{PREFIX}/sharing/{quote(staff_id, safe='')}"}


@router.get("/sharing/{staff_id}")
async def case(request: Request, _who: Viewer, ctx: Ctx, staff_id: str) -> Response:
    context = await run_in_threadpool(_case, ctx, staff_id[:MAX_STAFF_ID])
    if not context["evidence"]:
        raise ConsoleError(404, f"No credential-sharing alerts name staff {staff_id[:MAX_STAFF_ID]!r}.")
    return render(request, "sharing_case.html", context)


def _staff_action(ctx: Ctx, action: str, staff_id: str, reason: str, analyst: str, role: str,
                  addr: str | None) -> None:
    if not ctx.staff.available:
        raise ConsoleError(409, "Staff binding is not installed in this HQ yet (issue 5): nothing can be suspended.")
    now = time.time()
    try:
        with ctx.hq.sessions.begin() as session:
            if action == "suspend":
                changed = ctx.staff.suspend(session, staff_id=staff_id, actor=analyst, reason=reason, now=now)
            else:
                changed = ctx.staff.clear(session, staff_id=staff_id, actor=analyst, now=now)
            actions.record_action(session, analyst_id=analyst, role=role, action=f"staff.{action}", target=staff_id,
                                  detail=(reason or None) if changed else f"no change ({action} had no effect)",
                                  remote_addr=addr, now=now)
    except (LookupError, ValueError) as exc:  # the directory's "no such staff member"
        raise ConsoleError(404, str(exc)) from None
    ctx.staff.after_commit(staff_id, now)


@router.post("/staff/{staff_id}/{action}")
async def staff_action(request: Request, who: AnalystActing, ctx: Ctx, staff_id: str, action: str) -> Response:
    if action not in ("suspend", "clear"):
        raise ConsoleError(404, "Unknown staff action.")
    form = await request.form()
    reason = form_text(form, "reason", limit=200) or ("suspended from the console" if action == "suspend" else "")
    await run_in_threadpool(_staff_action, ctx, action, staff_id[:MAX_STAFF_ID], reason, who.analyst_id, who.role,
                            remote_addr(request))
    back = form_text(form, "back", limit=2000)
    return redirect(back if back.startswith(PREFIX + "/") else f"{PREFIX}/sharing")


def _register(ctx: Ctx, version: int | None, outlet: str | None) -> dict[str, Any]:
    current = ctx.hq.policies.current.version
    shown = current if version is None else version
    with ctx.hq.sessions() as session:
        acks = ctx.acks.acknowledgements(session, version=shown, outlet=outlet, limit=2000)
        signed_in = signed_in_staff(session)
    done = {ack.staff_id for ack in acks}
    missing = [row for row in signed_in if row[0] not in done and (outlet is None or row[2] == outlet)]
    return {"acks": acks, "version": shown, "current_policy": current, "outlet": outlet or "", "missing": missing}


@router.get("/acknowledgements")
async def register(request: Request, _who: Viewer, ctx: Ctx, version: str | None = None,
                   outlet: str | None = None) -> Response:
    number = query_int(version, "version", low=1, high=2**31 - 1)
    context = await run_in_threadpool(_register, ctx, number, (outlet or "")[:64] or None)
    return render(request, "acknowledgements.html", context)
