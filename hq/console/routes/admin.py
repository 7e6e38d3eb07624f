"""Enrollment tokens (a secret shown once, never again) and signed policy versions."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import func, select

from agent.policy import PolicyError
from hq.api.deps import remote_addr
from hq.console import actions
from hq.console.web import PREFIX, AdminActing, ConsoleError, Ctx, Viewer, form_text, query_int, redirect, render
from hq.db import Device, PolicyRecord
from hq.store.policies import policy_document, publish_policy
from hq.store.tokens import create_token, list_tokens
from hq.timefmt import parse_duration

router = APIRouter(prefix=PREFIX, include_in_schema=False)
MAX_POLICY_BYTES = 1024 * 1024
MAX_TOKEN_USES = 100_000


def _tokens(ctx: Ctx) -> dict[str, Any]:
    with ctx.hq.sessions() as session:
        # The stored hash is not shown either: nothing on this page can enroll a PC.
        rows = [{"outlet_id": t.outlet_id, "uses_left": t.uses_left, "uses_total": t.uses_total,
                 "created_at": t.created_at, "expires_at": t.expires_at} for t in list_tokens(session)]
    return {"tokens": rows[::-1], "created": None}


@router.get("/tokens")
async def tokens(request: Request, _who: Viewer, ctx: Ctx) -> Response:
    return render(request, "tokens.html", await run_in_threadpool(_tokens, ctx))


def _create_token(ctx: Ctx, outlet: str, uses: int, ttl_s: float, analyst: str, role: str,
                  addr: str | None) -> str:
    now = time.time()
    with ctx.hq.sessions.begin() as session:
        token = create_token(session, outlet_id=outlet, uses=uses, ttl_s=ttl_s, now=now)
        actions.record_action(session, analyst_id=analyst, role=role, action="token.create", target=outlet,
                              detail=f"{uses} use(s), expires in {ttl_s / 3600:.1f} h", remote_addr=addr, now=now)
    return token


@router.post("/tokens")
async def create(request: Request, who: AdminActing, ctx: Ctx) -> Response:
    form = await request.form()
    outlet = form_text(form, "outlet", limit=64)
    if not outlet:
        raise ConsoleError(400, "outlet: expected an outlet id of 1 to 64 characters")
    uses = query_int(form_text(form, "uses", limit=10) or "1", "uses", low=1, high=MAX_TOKEN_USES) or 1
    try:
        ttl_s = parse_duration(form_text(form, "ttl", limit=20) or "24h")
    except ValueError as exc:
        raise ConsoleError(400, f"ttl: {exc}") from None
    token = await run_in_threadpool(_create_token, ctx, outlet, uses, ttl_s, who.analyst_id, who.role,
                                    remote_addr(request))
    context = await run_in_threadpool(_tokens, ctx)
    # Rendered in the answer to this POST only: reloading the list never shows it again.
    context["created"] = {"token": token, "outlet": outlet, "uses": uses, "expires_at": time.time() + ttl_s}
    return render(request, "tokens.html", context)


def _policies(ctx: Ctx, version: int | None) -> dict[str, Any]:
    with ctx.hq.sessions() as session:
        records = list(session.scalars(select(PolicyRecord).order_by(PolicyRecord.version.desc()).limit(200)))
        on_version = dict(session.execute(
            select(Device.policy_version, func.count()).where(Device.revoked_at.is_(None))
            .group_by(Device.policy_version)).all())
    shown = next((r for r in records if r.version == version), records[0] if records else None)
    if version is not None and (shown is None or shown.version != version):
        raise ConsoleError(404, f"No policy version {version}.")
    document = policy_document(shown) if shown else None
    return {
        "policies": [{"version": r.version, "issued_at": r.issued_at, "pcs": on_version.get(r.version, 0)}
                     for r in records],
        "shown": shown,
        "body_json": json.dumps(document["body"], ensure_ascii=False, indent=2, sort_keys=True) if document else "",
        "current": ctx.hq.policies.current.version,
        "draft": None,
        "error": None,
    }


@router.get("/policies")
async def policies(request: Request, _who: Viewer, ctx: Ctx, version: str | None = None) -> Response:
    number = query_int(version, "version", low=1, high=2**31 - 1)
    return render(request, "policies.html", await run_in_threadpool(_policies, ctx, number))


def _policy_text(form: Any) -> str:
    upload = form.get("file")
    if upload is not None and not isinstance(upload, str) and upload.filename:
        raw = upload.file.read(MAX_POLICY_BYTES + 1)
        if len(raw) > MAX_POLICY_BYTES:
            raise PolicyError(f"file: more than {MAX_POLICY_BYTES} bytes")
        try:
            return str(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise PolicyError("file: not UTF-8 text") from None
    return form_text(form, "body", limit=MAX_POLICY_BYTES)


def _parse(text: str) -> Any:
    if not text.strip():
        raise PolicyError("body: empty; paste a JSON policy body or choose a .json file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"body: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None


def _publish(ctx: Ctx, body: Any, analyst: str, role: str, addr: str | None) -> int:
    now = time.time()
    with ctx.hq.sessions.begin() as session:
        record = publish_policy(session, body=body, key=ctx.hq.policy_key, now=now)
        actions.record_action(session, analyst_id=analyst, role=role, action="policy.publish",
                              target=f"version {record.version}", remote_addr=addr, now=now)
        version = record.version
    ctx.hq.policies.refresh()  # this process serves it at once; others within a flush interval
    return version


@router.post("/policies")
async def publish(request: Request, who: AdminActing, ctx: Ctx) -> Response:
    form = await request.form()
    text = ""
    try:
        text = _policy_text(form)
        body = _parse(text)
        version = await run_in_threadpool(_publish, ctx, body, who.analyst_id, who.role, remote_addr(request))
    except PolicyError as exc:
        context = await run_in_threadpool(_policies, ctx, None)
        context.update(draft=text, error=str(exc))
        return render(request, "policies.html", context, status=422)
    return redirect(f"{PREFIX}/policies?version={version}")
