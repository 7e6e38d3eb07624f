"""Schemathesis against HQ's own OpenAPI schema: generated requests, signed and unsigned, never a 5xx.

Half the generated requests are signed with an enrolled device's key (a fresh sequence number and
nonce each), so the fuzzing reaches the body validation behind the signature check rather than
stopping at 401. Every refusal must be the documented error shape.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from agent.events import Event
from agent.signing import sign_request
from tests.hq.conftest import Hq

EXAMPLES_PER_OPERATION = 40


def _body(kwargs: dict[str, Any]) -> bytes:
    if "json" in kwargs:
        return json.dumps(kwargs["json"], ensure_ascii=False).encode("utf-8", "surrogatepass")
    data = kwargs.get("data") or kwargs.get("content") or b""
    return data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)


def _send(hq: Hq, device: Any, case: Any, signed: bool) -> httpx.Response:
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    url = httpx.URL(kwargs["url"], params=kwargs.get("params") or None)
    body = _body(kwargs)
    headers = {k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() not in ("content-length", "host")}
    if signed:
        device.seq += 1
        path = url.raw_path.decode("ascii")
        headers.update(sign_request(device.key, method=kwargs["method"], path=path, body=body,
                                    device_id=device.device_id, seq=device.seq, timestamp=int(time.time())))
    try:
        return hq.client.request(kwargs["method"], str(url), content=body, headers=headers)
    except (httpx.LocalProtocolError, UnicodeEncodeError, ValueError):
        reject()  # the client cannot even send it (e.g. a header hypothesis made up); not the server's doing


def fuzz(hq: Hq, device: Any, operation: Any, seen: dict[str, set[int]]) -> None:
    # Derandomized: the same examples every run, so CI is repeatable; raise the count to explore.
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(), signed=st.booleans())
    def check(case: Any, signed: bool) -> None:
        response = _send(hq, device, case, signed)
        assert response.status_code < 500, (operation.path, response.status_code, response.text[:500])
        seen.setdefault(f"{operation.method} {operation.path}", set()).add(response.status_code)
        if response.status_code >= 400 and response.headers.get("content-type", "").startswith("application/json"):
            error = response.json()
            assert set(error) >= {"error", "detail"}, error

    check()


def test_generated_requests_never_get_a_5xx(hq: Hq) -> None:
    schema = schemathesis.openapi.from_dict(hq.client.app.openapi())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/enroll", "/v1/heartbeat", "/v1/events", "/v1/policy"}
    seen: dict[str, set[int]] = {}
    for operation in operations:
        fuzz(hq, hq.device(), operation, seen)  # a device of its own: fuzzing /v1/unenroll retires it
    heartbeat = seen["post /v1/heartbeat"]
    assert 401 in heartbeat and heartbeat & {200, 422}, heartbeat  # both sides of the signature were reached


def test_a_nul_character_is_refused_and_never_poisons_the_flush(hq: Hq) -> None:
    """Found by the fuzzing above: PostgreSQL cannot store NUL, so a NUL in a heartbeat made every
    later flush of its batch fail, and in an event batch or a sign-out it was a 500."""
    device = hq.device()
    refused = device.heartbeat(staff="S1\x00")
    assert (refused.status_code, refused.json()["error"]) == (422, "invalid_request")
    assert "NUL" in refused.json()["detail"]
    assert device.send_events([Event("finding", {"path": "a\x00b"})]).status_code == 422
    assert device.heartbeat(staff="S1").status_code == 200
    hq.state.flush()  # raises if a poisoned row were queued
    assert hq.devices()[device.device_id]["staff"] == "S1"
