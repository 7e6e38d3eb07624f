"""create_app(settings): the FastAPI application with its state, routes and background workers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from agent import __version__
from hq.api.errors import install_error_handlers
from hq.api.inflight import InflightLimit
from hq.api.openapi import install_openapi
from hq.api.routes import bench, enroll, events, heartbeat, policy, unenroll
from hq.binding.install import install_binding
from hq.console import install_console
from hq.metrics import install_metrics
from hq.settings import Settings
from hq.siem import build_forwarder
from hq.state import HqState, build_state


def create_app(settings: Settings, state: HqState | None = None) -> FastAPI:
    """Build the app; workers start with the lifespan and a clean shutdown flushes their state."""
    hq = state or build_state(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        hq.start_workers()
        binding.start()
        if siem is not None:
            siem.start()
        try:
            yield
        finally:
            if siem is not None:
                siem.stop()
            binding.stop()
            hq.stop_workers()
            hq.close()

    app = FastAPI(
        title="Terminal Guard HQ",
        version=__version__,
        description="Enrollment, heartbeats, events and signed policy for Terminal Guard agents.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.hq = hq
    install_error_handlers(app)
    # The hot path first: every request is matched against the routes in order. The benchmark's
    # no-op comes right after it, so the ceiling it measures is not lowered by route matching.
    app.router.routes.append(heartbeat.route)
    if settings.bench_noop:
        app.include_router(bench.router)
    for module in (enroll, events, policy, unenroll):
        app.include_router(module.router)
    binding = install_binding(app, hq)  # staff sessions, /v1/verify, credential-sharing detection
    install_console(app)
    exporter = install_metrics(app)
    siem = build_forwarder(settings.siem_url, hq.sessions)
    if siem is not None:
        exporter.gauges.append(siem.stats.lines)
    if settings.max_inflight is not None:
        app.add_middleware(InflightLimit, limit=settings.max_inflight)
    install_openapi(app)
    return app
