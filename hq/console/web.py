"""The console's web plumbing: templates, security headers, who is signed in, roles and CSRF.

Pages are server-rendered (Jinja2, autoescaped). Every page needs a signed-in analyst; every
change is a POST carrying the session's CSRF token (a form field, or X-CSRF-Token from script)
and, when the browser sends one, an Origin of this very host.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import ChainableUndefined, Environment, PackageLoader, select_autoescape
from starlette.datastructures import FormData

from hq.api.deps import remote_addr, state_of
from hq.console import actions
from hq.console.cache import TtlCache
from hq.console.fleet import Judge
from hq.console.roles import ADMIN, ANALYST, VIEWER, allows
from hq.console.sessions import COOKIE, SignedIn, resolve
from hq.console.staff_link import ACK_STATE_ATTR, STATE_ATTR, AckSource, EventAcks, NoStaffControl, StaffControl
from hq.state import HqState
from hq.timefmt import iso, strftime_at

PREFIX = "/console"
MAX_FORM_PART = 1024 * 1024
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer browsers send "Origin: null" on form posts.
    "Referrer-Policy": "same-origin",
    # Pages carry fleet data and, once, token secrets: never kept by the browser or a proxy.
    "Cache-Control": "no-store",
    "Strict-Transport-Security": "max-age=31536000",
}
LOCAL_TZ = dt.datetime.now().astimezone().tzinfo or dt.UTC


class NeedLogin(Exception):
    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class ConsoleError(Exception):
    """Rendered as the error page with this status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _when(ts: float | None) -> str:
    if ts is None:
        return "—"
    return strftime_at(ts, "%Y-%m-%d %H:%M:%S", tz=LOCAL_TZ)


def _iso(ts: float | None) -> str:
    return iso(ts) or ""


def _ago(ts: float | None, now: float | None = None) -> str:
    if ts is None:
        return "never"
    seconds = max(0, int((now or time.time()) - ts))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def utc_offset_text() -> str:
    offset = dt.datetime.now(LOCAL_TZ).utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def utc_offset_s() -> float:
    offset = dt.datetime.now(LOCAL_TZ).utcoffset() or dt.timedelta(0)
    return offset.total_seconds()


TEMPLATES = Environment(
    loader=PackageLoader("hq.console", "templates"),
    autoescape=select_autoescape(["html"]),
    # Lenient on purpose: event bodies come from PCs in every shape, and a page must still render.
    undefined=ChainableUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.filters.update(when=_when, iso=_iso, ago=_ago)
TEMPLATES.globals.update(VIEWER=VIEWER, ANALYST=ANALYST, ADMIN=ADMIN, allows=allows, PREFIX=PREFIX,
                         utc_offset=utc_offset_text)


def render(
    request: Request, template: str, context: Mapping[str, Any], *, status: int = 200,
    who: SignedIn | None = None, headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    who = who or getattr(request.state, "who", None)
    page = TEMPLATES.get_template(template).render(
        request_path=request.url.path, who=who, csrf=who.csrf_token if who else "", now=time.time(), **context
    )
    return HTMLResponse(page, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


def safe_next(url: str | None) -> str:
    """Only a path inside the console: a login link must not send anyone elsewhere."""
    if url and url.startswith(PREFIX) and not url.startswith("//") and "\\" not in url and "\n" not in url:
        return url
    return PREFIX + "/"


def login_url(next_url: str) -> str:
    return f"{PREFIX}/login?next={quote(next_url, safe='')}"


@dataclass(frozen=True)
class Console:
    """What a console route needs: the HQ state, the pieces issue 5 plugs in, the aggregate cache."""

    hq: HqState
    staff: StaffControl
    acks: AckSource
    cache: TtlCache

    def judge(self, now: float | None = None) -> Judge:
        settings = self.hq.settings
        return Judge(
            now=time.time() if now is None else now,
            silent_after_s=settings.silent_after_s,
            default_interval_s=settings.heartbeat_interval_s,
        )


def console_of(request: Request) -> Console:
    app_state = request.app.state
    return Console(
        hq=state_of(request),
        staff=getattr(app_state, STATE_ATTR, None) or NoStaffControl(),
        acks=getattr(app_state, ACK_STATE_ATTR, None) or EventAcks(),
        cache=app_state.console_cache,
    )


def _resolve(hq: HqState, cookie: str | None) -> SignedIn | None:
    with hq.sessions.begin() as session:
        return resolve(session, cookie=cookie, now=time.time())


async def signed_in(request: Request) -> SignedIn:
    who = await run_in_threadpool(_resolve, state_of(request), request.cookies.get(COOKIE))
    if who is None:
        query = request.url.query
        raise NeedLogin(request.url.path + (f"?{query}" if query else ""))
    request.state.who = who
    return who


def _refuse(hq: HqState, who: SignedIn, request: Request, why: str) -> None:
    route = request.scope.get("route")
    template = getattr(route, "path", request.url.path)  # /console/devices/{device_id}/revoke
    with hq.sessions.begin() as session:
        actions.record_action(
            session, analyst_id=who.analyst_id, role=who.role, action=f"{request.method} {template}"[:64],
            outcome=actions.DENIED, target=request.url.path, detail=why, remote_addr=remote_addr(request),
            now=time.time(),
        )


def needs(role: str) -> Callable[..., Awaitable[SignedIn]]:
    async def dependency(request: Request, who: Annotated[SignedIn, Depends(signed_in)]) -> SignedIn:
        if not allows(who.role, role):
            await run_in_threadpool(_refuse, state_of(request), who, request, f"needs role {role}")
            raise ConsoleError(403, f"This needs the {role} role; you are signed in as {who.role}.")
        return who

    return dependency


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host")


async def read_form(request: Request) -> FormData:
    return await request.form(max_files=1, max_fields=50, max_part_size=MAX_FORM_PART)


def acting(role: str) -> Callable[..., Awaitable[SignedIn]]:
    """A change: the role, the session's CSRF token and a same-origin request."""
    check_role = needs(role)

    async def dependency(request: Request, who: Annotated[SignedIn, Depends(signed_in)]) -> SignedIn:
        form = await read_form(request)
        sent = form.get("csrf") or request.headers.get("x-csrf-token")
        if not isinstance(sent, str) or not secrets.compare_digest(sent.encode(), who.csrf_token.encode()):
            await run_in_threadpool(_refuse, state_of(request), who, request, "missing or wrong CSRF token")
            raise ConsoleError(
                403, "This form has expired or did not come from the console. Reload the page and try again."
            )
        if not _same_origin(request):
            await run_in_threadpool(_refuse, state_of(request), who, request, "cross-origin request")
            raise ConsoleError(403, "This request came from another site.")
        return await check_role(request, who)

    return dependency


Viewer = Annotated[SignedIn, Depends(needs(VIEWER))]
AnalystActing = Annotated[SignedIn, Depends(acting(ANALYST))]
AdminActing = Annotated[SignedIn, Depends(acting(ADMIN))]
SignedInActing = Annotated[SignedIn, Depends(acting(VIEWER))]
Ctx = Annotated[Console, Depends(console_of)]


def form_text(form: FormData, name: str, *, limit: int = 500) -> str:
    value = form.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConsoleError(400, f"{name}: expected text, got a file")
    if len(value) > limit:
        raise ConsoleError(400, f"{name}: at most {limit} characters, got {len(value)}")
    return value.strip()


def query_int(value: str | None, name: str, *, low: int = 0, high: int = 2**62) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or not low <= int(value) <= high:
        raise ConsoleError(400, f"{name}: expected a whole number from {low} to {high}, got {value[:40]!r}")
    return int(value)


def audit(ctx: Console, who: SignedIn, request: Request, action: str, **fields: Any) -> None:
    """Record an analyst action in its own transaction (for changes that are not database writes)."""
    with ctx.hq.sessions.begin() as session:
        actions.record_action(
            session, analyst_id=who.analyst_id, role=who.role, action=action, remote_addr=remote_addr(request),
            now=time.time(), **fields,
        )
