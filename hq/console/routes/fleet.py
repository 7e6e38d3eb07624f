"""Fleet overview, PC lists, one PC's page, and revoking a PC."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from agent.events import PRIORITY_HIGH
from hq.api.deps import remote_addr
from hq.console import actions
from hq.console.alerts import AlertFilter, list_alerts
from hq.console.charts import alerts_per_day, line_chart, silent_over_time, stacked_bars
from hq.console.fleet import (
    STATUSES,
    DeviceFilter,
    device_page,
    outlet_count,
    outlet_rows,
    record_of,
    status_counts,
    version_counts,
)
from hq.console.staff_link import ACK_KIND, ack_of_event
from hq.console.timeline import device_timeline, timeline_svg
from hq.console.web import (
    PREFIX,
    AnalystActing,
    ConsoleError,
    Ctx,
    Viewer,
    form_text,
    query_int,
    redirect,
    render,
    utc_offset_s,
)
from hq.db import Device
from hq.store.devices import revoke_device
from hq.store.events import list_events, record_hq_event

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE = 200


COUNTS_TTL_S = 5.0
CHARTS_TTL_S = 60.0


def _overview(ctx: Ctx, outlet_prefix: str | None) -> dict[str, Any]:
    judge = ctx.judge()
    offset = utc_offset_s()
    current = ctx.hq.policies.current.version
    cache = ctx.cache

    def load(query: Any) -> Any:
        def run() -> Any:
            with ctx.hq.sessions() as session:
                return query(session)

        return run

    return {
        "counts": cache.get("counts", COUNTS_TTL_S, load(lambda s: status_counts(s, judge))),
        "outlets": cache.get(("outlets", outlet_prefix, current), COUNTS_TTL_S, load(
            lambda s: outlet_rows(s, judge, current_policy=current, outlet_prefix=outlet_prefix))),
        "outlet_total": cache.get("outlet_total", COUNTS_TTL_S, load(outlet_count)),
        "versions": cache.get("versions", COUNTS_TTL_S, load(version_counts)),
        "current_policy": current,
        "alerts_chart": cache.get("alerts_chart", CHARTS_TTL_S, load(lambda s: stacked_bars(
            alerts_per_day(s, now=judge.now, utc_offset_s=offset), utc_offset_s=offset))),
        "silent_chart": cache.get("silent_chart", CHARTS_TTL_S, load(lambda s: line_chart(
            silent_over_time(s, now=judge.now), label="silent PCs, last 7 days", utc_offset_s=offset))),
        "outlet_prefix": outlet_prefix or "",
    }


@router.get("/")
async def overview(request: Request, _who: Viewer, ctx: Ctx, outlet: str | None = None) -> Response:
    prefix = (outlet or "").strip()[:64] or None
    return render(request, "fleet.html", await run_in_threadpool(_overview, ctx, prefix))


def _devices(ctx: Ctx, where: DeviceFilter, page: int) -> dict[str, Any]:
    with ctx.hq.sessions() as session:
        records, total = device_page(session, ctx.judge(), where, limit=PAGE, offset=page * PAGE)
        suspended = ctx.staff.suspended(session, {r["staff"] for r in records if r["staff"]})
    return {"devices": records, "total": total, "page": page, "pages": max(1, -(-total // PAGE)),
            "where": where, "statuses": STATUSES, "suspended": suspended}


@router.get("/devices")
async def devices(request: Request, _who: Viewer, ctx: Ctx, status: str | None = None, outlet: str | None = None,
                  q: str | None = None, page: str | None = None) -> Response:
    if status and status not in STATUSES:
        raise ConsoleError(400, f"status: expected one of {', '.join(STATUSES)}, got {status[:20]!r}")
    where = DeviceFilter(status=status or None, outlet=(outlet or "")[:64] or None, query=(q or "")[:64] or None)
    number = query_int(page, "page", high=100_000) or 0
    return render(request, "devices.html", await run_in_threadpool(_devices, ctx, where, number))


@router.get("/outlets/{outlet_id}")
async def outlet(request: Request, _who: Viewer, ctx: Ctx, outlet_id: str) -> Response:
    where = DeviceFilter(outlet=outlet_id[:64])
    return render(request, "devices.html", await run_in_threadpool(_devices, ctx, where, 0))


def _device(ctx: Ctx, device_id: str) -> dict[str, Any] | None:
    judge = ctx.judge()
    with ctx.hq.sessions() as session:
        device = session.get(Device, device_id)
        if device is None:
            return None
        record = record_of(device, judge)
        segments, marks = device_timeline(session, device=device, status_now=record["status"], now=judge.now)
        events = list(reversed(list_events(session, device_id=device_id, limit=50)))
        acks = [ack for event in reversed(list_events(session, device_id=device_id, kind=ACK_KIND, limit=50))
                if (ack := ack_of_event(event, outlet_id=device.outlet_id, hostname=device.hostname)) is not None]
        suspended = ctx.staff.suspended(session, [device.staff]) if device.staff else set()
        return {
            "device": record,
            "timeline": timeline_svg(segments, marks, now=judge.now, utc_offset_s=utc_offset_s()),
            "alerts": list_alerts(session, AlertFilter(state=None, device=device_id), limit=50),
            "events": events,
            "acks": acks,
            "staff_available": ctx.staff.available,
            "staff_suspended": bool(suspended),
            "current_policy": ctx.hq.policies.current.version,
        }


@router.get("/devices/{device_id}")
async def device(request: Request, _who: Viewer, ctx: Ctx, device_id: str) -> Response:
    context = await run_in_threadpool(_device, ctx, device_id[:64])
    if context is None:
        raise ConsoleError(404, f"No PC with id {device_id[:64]!r}.")
    return render(request, "device.html", context)


def _revoke(ctx: Ctx, device_id: str, reason: str, analyst: str, role: str, addr: str | None) -> bool:
    now = time.time()
    with ctx.hq.sessions.begin() as session:
        try:
            revoked = revoke_device(session, device_id=device_id, reason=reason, now=now)
        except LookupError:
            raise ConsoleError(404, f"No PC with id {device_id!r}.") from None
        if revoked:
            record_hq_event(session, device_id=device_id, kind="device.revoked",
                            body={"device_id": device_id, "reason": reason, "analyst": analyst}, now=now,
                            priority=PRIORITY_HIGH)
        actions.record_action(session, analyst_id=analyst, role=role, action="device.revoke", target=device_id,
                              detail=reason if revoked else "already revoked", remote_addr=addr, now=now)
    # This process refuses the PC at once; other HQ processes notice within a flush interval.
    ctx.hq.live.mark_revoked([device_id])
    ctx.cache.clear()  # the analyst expects the counts to show what they just did
    return revoked


@router.post("/devices/{device_id}/revoke")
async def revoke(request: Request, who: AnalystActing, ctx: Ctx, device_id: str) -> Response:
    form = await request.form()
    reason = form_text(form, "reason", limit=200) or "revoked from the console"
    await run_in_threadpool(_revoke, ctx, device_id[:64], reason, who.analyst_id, who.role, remote_addr(request))
    return redirect(f"{PREFIX}/devices/{quote(device_id[:64], safe='')}")
