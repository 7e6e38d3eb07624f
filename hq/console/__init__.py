"""The HQ web console for the security team: server-rendered pages under /console.

    install_console(app)   # in hq.app.create_app

Staff actions and the acknowledgement register use what session binding (issue 5) puts on
app.state (hq.staff.control); hq.console.staff_link defines those two interfaces and the fallbacks.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from hq.console.cache import TtlCache
from hq.console.routes import admin, alerts, audit, auth, fleet, staff
from hq.console.web import PREFIX, ConsoleError, NeedLogin, login_url, redirect, render

STATIC = Path(__file__).resolve().parent / "static"


async def _need_login(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NeedLogin)
    if request.method != "GET" or request.url.path.startswith(PREFIX + "/alerts/rows") \
            or request.url.path == PREFIX + "/live":
        # Script and form posts get a plain 401 rather than a login page they cannot show.
        return render(request, "error.html", {"message": "Your session has ended; sign in again."}, status=401)
    return redirect(login_url(exc.next_url))


async def _console_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleError)
    return render(request, "error.html", {"message": exc.message}, status=exc.status)


async def _home(_request: Request) -> Response:
    return redirect(PREFIX + "/")


def install_console(app: FastAPI) -> None:
    app.state.console_cache = TtlCache()
    for module in (auth, fleet, alerts, staff, admin, audit):
        app.include_router(module.router)
    app.mount(PREFIX + "/static", StaticFiles(directory=STATIC), name="console-static")
    app.add_api_route("/", _home, methods=["GET"], include_in_schema=False)
    app.add_api_route(PREFIX, _home, methods=["GET"], include_in_schema=False)
    app.add_exception_handler(NeedLogin, _need_login)
    app.add_exception_handler(ConsoleError, _console_error)
