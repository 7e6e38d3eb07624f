"""Wire session binding into the HQ app: one service on app.state, its routes and a hook for events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI

from hq.binding.service import BindingService
from hq.state import HqState


def install_binding(app: FastAPI, hq: HqState) -> BindingService:
    from hq.api.routes import session, verify
    from hq.staff.control import DirectoryControl, RegisterAcks

    service = BindingService(hq)
    app.state.binding = service
    # What the HQ console (hq.console.staff_link) uses to suspend, clear and list acknowledgements.
    app.state.staff_control = DirectoryControl(service.directory)
    app.state.ack_source = RegisterAcks()
    # Verify sits on the business system's request path: match it right after the heartbeat (and
    # the benchmark's no-op), before the FastAPI routes, whose matching costs tens of microseconds.
    routes = app.router.routes
    hot = [i for i, route in enumerate(routes) if getattr(route, "path", None) in ("/v1/heartbeat", "/v1/noop")]
    position = max(hot) + 1 if hot else 0
    routes[position:position] = verify.routes
    app.include_router(session.router)
    return service


def binding_of(app: Any) -> BindingService:
    service: BindingService = app.state.binding
    return service


def after_events(app: Any, device_id: str, events: Sequence[dict[str, Any]]) -> None:
    """Called by POST /v1/events once a batch is committed."""
    service = getattr(app.state, "binding", None)
    if service is not None:
        service.on_events(device_id, events)
