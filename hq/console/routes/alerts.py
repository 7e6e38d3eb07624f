"""The alert queue: filters, the live feed of new alerts, and triage."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from hq.api.deps import remote_addr
from hq.console import actions
from hq.console.alerts import (
    ACTIONS,
    CATEGORIES,
    STATES,
    AlertFilter,
    TriageError,
    count_open,
    get_alert,
    latest_pk,
    list_alerts,
    triage,
)
from hq.console.web import (
    PREFIX,
    SECURITY_HEADERS,
    TEMPLATES,
    AnalystActing,
    ConsoleError,
    Ctx,
    Viewer,
    form_text,
    query_int,
    redirect,
    render,
    safe_next,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE = 100
LIVE_MAX = 200
OPEN_WINDOW_S = 7 * 86400.0


def _filter(state: str | None, category: str | None, min_priority: str | None, outlet: str | None,
            device: str | None) -> AlertFilter:
    if state not in (None, "", "all", *STATES):
        raise ConsoleError(400, f"state: expected one of all, {', '.join(STATES)}, got {state[:20]!r}")
    if category not in (None, "", *CATEGORIES):
        raise ConsoleError(400, f"category: expected one of {', '.join(CATEGORIES)}, got {category[:20]!r}")
    return AlertFilter(
        state="open" if state is None or state == "" else None if state == "all" else state,
        category=category or None,
        min_priority=query_int(min_priority, "min_priority", high=3),
        outlet=(outlet or "")[:64] or None,
        device=(device or "")[:64] or None,
    )


def _queue(ctx: Ctx, where: AlertFilter, before: int | None) -> dict[str, Any]:
    with ctx.hq.sessions() as session:
        alerts = list_alerts(session, where, before_pk=before, limit=PAGE)
        last = latest_pk(session)
    return {"alerts": alerts, "where": where, "states": STATES, "categories": CATEGORIES, "last_pk": last,
            "older": alerts[-1].pk if len(alerts) == PAGE else None}


@router.get("/alerts")
async def queue(request: Request, _who: Viewer, ctx: Ctx, state: str | None = None, category: str | None = None,
                min_priority: str | None = None, outlet: str | None = None, device: str | None = None,
                before: str | None = None) -> Response:
    where = _filter(state, category, min_priority, outlet, device)
    context = await run_in_threadpool(_queue, ctx, where, query_int(before, "before"))
    return render(request, "alerts.html", {**context, "back": request.url.path + (f"?{request.url.query}" if
                                                                                  request.url.query else "")})


def _rows(ctx: Ctx, where: AlertFilter, after: int) -> tuple[list[Any], int]:
    with ctx.hq.sessions() as session:
        return list_alerts(session, where, after_pk=after, limit=LIVE_MAX), latest_pk(session)


@router.get("/alerts/rows")
async def live_rows(request: Request, who: Viewer, ctx: Ctx, after: str, state: str | None = None,
                    category: str | None = None, min_priority: str | None = None, outlet: str | None = None,
                    device: str | None = None, back: str | None = None) -> Response:
    """New rows since ``after`` as HTML for the queue to prepend; polled by console.js."""
    where = _filter(state, category, min_priority, outlet, device)
    alerts, last = await run_in_threadpool(_rows, ctx, where, query_int(after, "after") or 0)
    html = TEMPLATES.get_template("_alert_rows.html").render(
        alerts=alerts, who=who, csrf=who.csrf_token, back=safe_next(back), now=time.time()
    )
    return JSONResponse({"html": html, "count": len(alerts), "last": last}, headers=SECURITY_HEADERS)


def _open_count(ctx: Ctx) -> dict[str, int]:
    with ctx.hq.sessions() as session:
        return {"open": count_open(session, since=time.time() - OPEN_WINDOW_S), "last": latest_pk(session)}


@router.get("/live")
async def live(_who: Viewer, ctx: Ctx) -> Response:
    """The open-alert count of the navigation badge (alerts of the last 7 days)."""
    return JSONResponse(await run_in_threadpool(_open_count, ctx), headers=SECURITY_HEADERS)


@router.get("/alerts/{pk}")
async def alert(request: Request, _who: Viewer, ctx: Ctx, pk: str) -> Response:
    number = query_int(pk, "alert")

    def load() -> Any:
        with ctx.hq.sessions() as session:
            return get_alert(session, pk=number or 0)

    found = await run_in_threadpool(load)
    if found is None:
        raise ConsoleError(404, f"No alert {pk[:20]!r}.")
    return render(request, "alert.html", {"alert": found, "back": f"{PREFIX}/alerts/{found.pk}"})


def _triage(ctx: Ctx, pk: int, action: str, note: str, analyst: str, role: str, addr: str | None) -> None:
    now = time.time()
    with ctx.hq.sessions.begin() as session:
        try:
            before, after = triage(session, pk=pk, action=action, analyst_id=analyst, note=note, now=now)
        except TriageError as exc:
            raise ConsoleError(400, str(exc)) from None
        except LookupError:
            raise ConsoleError(404, f"No alert {pk}.") from None
        actions.record_action(session, analyst_id=analyst, role=role, action=f"alert.{action}", target=str(pk),
                              detail=f"{before} -> {after}" + (f": {note}" if note else ""), remote_addr=addr, now=now)


@router.post("/alerts/{pk}/triage")
async def triage_alert(request: Request, who: AnalystActing, ctx: Ctx, pk: str) -> Response:
    form = await request.form()
    action = form_text(form, "action", limit=20)
    if action not in ACTIONS:
        raise ConsoleError(400, f"action: expected one of {', '.join(ACTIONS)}, got {action!r:.30}")
    number = query_int(pk, "alert") or 0
    await run_in_threadpool(_triage, ctx, number, action, form_text(form, "note", limit=500), who.analyst_id,
                            who.role, remote_addr(request))
    return redirect(safe_next(form_text(form, "back", limit=2000) or f"{PREFIX}/alerts"))
