"""Prometheus ``/metrics``: devices by status, request rates and latencies, SIEM delivery, verify latency.

Authenticated like every HQ endpoint: a bearer token made with ``terminal-guard-hq api-token
create --name prometheus`` (scope metrics). Request counts and latencies come from a pure ASGI
middleware (a dict increment and two clock reads per request: it sits on the heartbeat hot path);
device counts come from one GROUP BY, cached for a few seconds so scrapes cost the database little.
"""

from __future__ import annotations

import bisect
import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hq.api.deps import state_of
from hq.console.api_tokens import SCOPE_METRICS, check_api_token
from hq.console.fleet import Judge, status_counts
from hq.state import HqState

PATH = "/metrics"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds; dense where the heartbeat and verify paths live (a few ms), sparse above.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
ROUTES = {
    "/v1/heartbeat": "heartbeat",
    "/v1/events": "events",
    "/v1/enroll": "enroll",
    "/v1/policy": "policy",
    "/v1/unenroll": "unenroll",
    "/v1/verify": "verify",
    PATH: "metrics",
}
DEVICE_CACHE_S = 5.0
TOKEN_CACHE_S = 60.0


def route_label(path: str) -> str:
    """A bounded set of labels: anything unknown is "other", so a scanner cannot grow the series."""
    label = ROUTES.get(path)
    if label is not None:
        return label
    if path.startswith("/console"):
        return "console"
    if path.startswith("/v1/session"):
        return "session"
    return "other"


@dataclass
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0
    n: int = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds
        self.n += 1


class RequestStats:
    """Counters written on the event loop only (the middleware); scrapes read a copy."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        self.latency: dict[str, Histogram] = {}
        self.started = time.time()

    def observe(self, route: str, status: int, seconds: float) -> None:
        key = (route, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        histogram = self.latency.get(route)
        if histogram is None:
            histogram = self.latency[route] = Histogram()
        histogram.observe(seconds)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, *, stats: RequestStats) -> None:
        self._app = app
        self._stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def remember(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, remember)
        finally:
            self._stats.observe(route_label(scope["path"]), status, time.perf_counter() - started)


class _Cached:
    def __init__(self, ttl_s: float) -> None:
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._value: Any = None
        self._at = 0.0

    def get(self, load: Callable[[], Any]) -> Any:
        with self._lock:
            if self._value is None or time.monotonic() - self._at > self._ttl_s:
                self._value = load()
                self._at = time.monotonic()
            return self._value


@dataclass
class Exporter:
    stats: RequestStats
    gauges: list[Callable[[], Iterable[str]]] = field(default_factory=list)
    devices: _Cached = field(default_factory=lambda: _Cached(DEVICE_CACHE_S))
    tokens: dict[str, float] = field(default_factory=dict)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _histogram_lines(name: str, label: str, histograms: dict[str, Histogram]) -> list[str]:
    lines = [f"# HELP {name} Time to answer a request, by route.", f"# TYPE {name} histogram"]
    for route, hist in sorted(histograms.items()):
        cumulative = 0
        for bound, count in zip((*BUCKETS, float("inf")), hist.counts, strict=True):
            cumulative += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'{name}_bucket{{{label}="{_escape(route)}",le="{le}"}} {cumulative}')
        lines.append(f'{name}_sum{{{label}="{_escape(route)}"}} {hist.total:.6f}')
        lines.append(f'{name}_count{{{label}="{_escape(route)}"}} {hist.n}')
    return lines


def render(exporter: Exporter, hq: HqState) -> str:
    settings = hq.settings

    def load_devices() -> dict[str, int]:
        judge = Judge(now=time.time(), silent_after_s=settings.silent_after_s,
                      default_interval_s=settings.heartbeat_interval_s)
        with hq.sessions() as session:
            return status_counts(session, judge)

    devices = exporter.devices.get(load_devices)
    stats = exporter.stats
    requests = dict(stats.requests)
    latency = {route: Histogram(list(h.counts), h.total, h.n) for route, h in list(stats.latency.items())}
    lines = ["# HELP tg_devices Enrolled PCs by status.", "# TYPE tg_devices gauge"]
    lines += [f'tg_devices{{status="{status}"}} {count}' for status, count in sorted(devices.items())]
    lines += ["# HELP tg_live_devices PCs held in this process's memory.", "# TYPE tg_live_devices gauge",
              f"tg_live_devices {len(hq.live)}"]
    lines += ["# HELP tg_http_requests_total Requests answered, by route and status code.",
              "# TYPE tg_http_requests_total counter"]
    lines += [f'tg_http_requests_total{{route="{_escape(route)}",code="{code}"}} {count}'
              for (route, code), count in sorted(requests.items())]
    beats = sum(count for (route, code), count in requests.items() if route == "heartbeat" and code == 200)
    lines += ["# HELP tg_heartbeats_total Heartbeats accepted by this process (rate() gives heartbeats/s).",
              "# TYPE tg_heartbeats_total counter", f"tg_heartbeats_total {beats}"]
    lines += _histogram_lines("tg_http_request_duration_seconds", "route", latency)
    verify = latency.get("verify", Histogram())
    lines += _histogram_lines("tg_verify_duration_seconds", "route", {"verify": verify})
    lines += ["# HELP tg_policy_version The policy version this process serves.", "# TYPE tg_policy_version gauge",
              f"tg_policy_version {hq.policies.current.version}"]
    lines += ["# HELP tg_replay_cache_entries Nonces held by the replay cache.",
              "# TYPE tg_replay_cache_entries gauge", f"tg_replay_cache_entries {len(hq.replay)}"]
    lines += ["# HELP tg_process_start_time_seconds When this HQ process started.",
              "# TYPE tg_process_start_time_seconds gauge", f"tg_process_start_time_seconds {stats.started:.3f}"]
    for gauge in exporter.gauges:
        lines += list(gauge())
    return "\n".join(lines) + "\n"


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _authorized(exporter: Exporter, hq: HqState, token: str) -> bool:
    now = time.monotonic()
    key = hashlib.sha256(token.encode("utf-8")).hexdigest()
    if exporter.tokens.get(key, 0.0) > now:
        return True
    with hq.sessions() as session:
        ok = check_api_token(session, token=token, scope=SCOPE_METRICS) is not None
    if ok:
        if len(exporter.tokens) > 100:
            exporter.tokens.clear()
        exporter.tokens[key] = now + TOKEN_CACHE_S
    return ok


def install_metrics(app: FastAPI) -> Exporter:
    exporter = Exporter(stats=RequestStats())

    async def metrics(request: Request) -> Response:
        hq = state_of(request)
        token = _bearer(request)
        if token is None or not await run_in_threadpool(_authorized, exporter, hq, token):
            return PlainTextResponse("a bearer token of scope metrics is required "
                                     "(terminal-guard-hq api-token create --name prometheus)\n",
                                     status_code=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        text = await run_in_threadpool(render, exporter, hq)
        return PlainTextResponse(text, media_type=CONTENT_TYPE)

    app.add_api_route(PATH, metrics, methods=["GET"], include_in_schema=False)
    app.add_middleware(MetricsMiddleware, stats=exporter.stats)
    app.state.metrics = exporter
    return exporter
