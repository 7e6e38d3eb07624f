"""Sign in and out. Analysts only: outlet staff have no console account."""

from __future__ import annotations

import secrets
import time

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from hq.api.deps import remote_addr
from hq.console import actions
from hq.console.analysts import authenticate
from hq.console.sessions import ABSOLUTE_S, COOKIE, close_session, open_session
from hq.console.web import PREFIX, Ctx, SignedInActing, form_text, read_form, redirect, render, safe_next

router = APIRouter(prefix=PREFIX, include_in_schema=False)

# A login form carries a random value that must match a cookie set with the form (double submit),
# so another site cannot sign a browser in to an account of its choosing.
LOGIN_COOKIE = "tg_login"


def _login_page(request: Request, *, next_url: str, error: str | None = None, status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", {"next": next_url, "login_token": token, "error": error}, status=status)
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, path=PREFIX, secure=True, httponly=True, samesite="strict")
    return response


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    return _login_page(request, next_url=safe_next(next))


def _sign_in(ctx: Ctx, analyst_id: str, password: str, addr: str | None) -> tuple[str, str] | None:
    now = time.time()
    with ctx.hq.sessions.begin() as session:
        result = authenticate(session, analyst_id=analyst_id, password=password, now=now)
        if result.analyst is None:
            actions.record_action(
                session, analyst_id=analyst_id or "-", role=None, action="login", outcome=actions.DENIED,
                detail=result.reason, remote_addr=addr, now=now,
            )
            return None
        opened = open_session(session, analyst_id=result.analyst.id, remote_addr=addr, now=now)
        actions.record_action(
            session, analyst_id=result.analyst.id, role=result.analyst.role, action="login", remote_addr=addr, now=now
        )
        return opened


@router.post("/login")
async def login(request: Request, ctx: Ctx) -> Response:
    form = await read_form(request)
    next_url = safe_next(form_text(form, "next", limit=2000))
    sent = form_text(form, "login_token", limit=100)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not sent or not expected or not secrets.compare_digest(sent.encode(), expected.encode()):
        return _login_page(request, next_url=next_url, error="The sign-in form expired; please try again.", status=400)
    analyst_id = form_text(form, "analyst_id", limit=64)
    password = form_text(form, "password", limit=1024)
    opened = await run_in_threadpool(_sign_in, ctx, analyst_id, password, remote_addr(request))
    if opened is None:
        # One message for every failure: an unknown id, a wrong password and a locked account look alike.
        return _login_page(request, next_url=next_url, error="Wrong analyst id or password, or the account is "
                           "locked for a few minutes after repeated failures.", status=401)
    token, _csrf = opened
    response = redirect(next_url)
    response.set_cookie(COOKIE, token, max_age=int(ABSOLUTE_S), path=PREFIX, secure=True, httponly=True,
                        samesite="strict")
    response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
    return response


def _sign_out(ctx: Ctx, token_hash: str, analyst_id: str, role: str, addr: str | None) -> None:
    with ctx.hq.sessions.begin() as session:
        close_session(session, token_hash=token_hash)
        actions.record_action(session, analyst_id=analyst_id, role=role, action="logout", remote_addr=addr,
                              now=time.time())


@router.post("/logout")
async def logout(request: Request, who: SignedInActing, ctx: Ctx) -> Response:
    await run_in_threadpool(_sign_out, ctx, who.token_hash, who.analyst_id, who.role, remote_addr(request))
    response = redirect(PREFIX + "/login")
    response.delete_cookie(COOKIE, path=PREFIX)
    return response
