"""Oversized requests: every route refuses a body over its limit with 413 — whether the size is
declared up front or the body just keeps coming (chunked) — and a batch over the event count
limit is 413 too, so the agent's halving works. Oversized headers are refused without a 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from agent.events import Event
from hq.api.deps import EMPTY_MAX_BYTES, ENROLL_MAX_BYTES, EVENTS_MAX_BYTES, HEARTBEAT_MAX_BYTES
from hq.api.models import MAX_EVENTS_PER_BATCH
from tests.abuse.conftest import InProcessHq
from tests.hq.device_client import pinned_client
from tests.hq_server import HqServer

LIMITS = [
    ("POST", "/v1/enroll", ENROLL_MAX_BYTES, False),
    ("POST", "/v1/heartbeat", HEARTBEAT_MAX_BYTES, True),
    ("POST", "/v1/events", EVENTS_MAX_BYTES, True),
    ("GET", "/v1/policy", EMPTY_MAX_BYTES, True),
    ("POST", "/v1/unenroll", EMPTY_MAX_BYTES, True),
]


def padded(limit: int) -> bytes:
    """Valid JSON one byte over the limit, so only the size can be the reason for refusal."""
    head = b'{"pad": "'
    return head + b"x" * (limit + 1 - len(head) - 2) + b'"}'


@pytest.mark.parametrize("method, path, limit, signed", LIMITS)
def test_a_body_over_the_routes_limit_is_413_declared_or_streamed(hq: InProcessHq, method: str, path: str,
                                                                  limit: int, signed: bool) -> None:
    body = padded(limit)
    device = hq.device()
    headers = device.prepare(method, path, body=body).headers if signed else {"Content-Type": "application/json"}
    declared = hq.client.request(method, path, content=body, headers=headers)
    assert declared.status_code == 413, declared.text[:200]

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start:start + 4096]

    headers = device.prepare(method, path, body=body).headers if signed else {"Content-Type": "application/json"}
    streamed = hq.client.request(method, path, content=chunks(), headers=headers)
    assert streamed.status_code == 413, streamed.text[:200]
    assert streamed.json()["error"] == "too_large"


def test_a_batch_over_the_event_count_is_413_even_when_small(hq: InProcessHq) -> None:
    device = hq.device()
    events = [Event("e", {}).to_wire() for _ in range(MAX_EVENTS_PER_BATCH + 1)]
    body = json.dumps({"events": events}).encode()
    assert len(body) < EVENTS_MAX_BYTES
    response = device.signed("POST", "/v1/events", body=body)
    assert response.status_code == 413 and "at most" in response.json()["detail"]


def test_oversized_and_malformed_headers_get_no_5xx_from_the_real_server(hq_process: HqServer) -> None:
    with pinned_client(hq_process.url, str(hq_process.ca_file)) as http:
        statuses: list[int | str] = []
        for headers in ({"X-TG-Device": "d" * 100_000}, {"X-Pad": "p" * 1_000_000},
                        {f"X-Many-{i}": "v" for i in range(2000)}, {"Content-Length": "-1"},
                        {"Content-Length": "99999999999999999999"}):
            try:
                statuses.append(http.post("/v1/heartbeat", content=b"{}", headers=headers).status_code)
            except Exception as exc:  # the server may hang up on a request it will not parse
                statuses.append(type(exc).__name__)
        assert not [s for s in statuses if isinstance(s, int) and s >= 500], statuses
        assert http.post("/v1/enroll", json={}).status_code == 422, "HQ did not survive the oversized headers"
