"""schemathesis over the whole HQ API (its OpenAPI document), as a stranger and as an enrolled device.

Every operation gets generated requests, valid and invalid by the schema. The stranger must never
get past enrollment's door: every signed route answers 401 (or 413/422/429 before auth), and no
request changes what HQ stores. The device may use its rights, but only on itself: whatever it
sends, no other device's events or status change. Neither ever sees a 5xx, and every answer
matches the documented status codes and shapes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core import NOT_SET
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from agent.events import Event
from hq import commands
from tests.abuse.conftest import SOAK, InProcessHq
from tests.hq.device_client import DeviceClient

EXAMPLES = settings(max_examples=1000 if SOAK else 60, deadline=None, derandomize=not SOAK,
                    suppress_health_check=list(HealthCheck))
# The routes that need no device signature. Anything else must refuse a stranger.
PUBLIC = {("POST", "/v1/enroll")}
REFUSALS_BEFORE_AUTH = {401, 413, 422, 429}
# "Schema-valid means accepted" does not hold for HQ by design: a schema cannot say that a proof
# must verify or a token must exist. Every other built-in check (no 5xx, documented status codes,
# content types, response shapes, invalid data refused) runs.
SEMANTIC = [positive_data_acceptance]


class World:
    """HQ plus a bystander device whose data must never move, and the device under test."""

    def __init__(self, hq: InProcessHq) -> None:
        self.hq = hq
        self.bystander = hq.device(outlet="outlet-bystander")
        self.bystander.send_events([Event("bystander", {"n": i}) for i in range(3)])
        assert self.bystander.heartbeat(staff="S-BYSTANDER").status_code == 200
        self.devices: list[DeviceClient] = []
        self.current = self.enroll()

    def enroll(self) -> DeviceClient:
        device = self.hq.device(outlet="outlet-fuzz")
        self.devices.append(device)
        self.current = device
        return device

    def snapshot(self) -> dict[str, Any]:
        """What a caller without the bystander's key must never change."""
        device = self.hq.devices()[self.bystander.device_id]
        events = commands.events(self.hq.state.sessions, since=None, kind=None, device_id=self.bystander.device_id,
                                 limit=1000)
        return {"events": [(e["event_id"], e["body"]) for e in events], "status": device["status"],
                "staff": device["staff"], "heartbeats": device["heartbeat_count"]}

    def stored_devices(self) -> set[str]:
        return {e["device_id"] for e in commands.events(self.hq.state.sessions, since=None, kind=None,
                                                          device_id=None, limit=100_000)}


@pytest.fixture
def world(hq: InProcessHq) -> World:
    return World(hq)


def cases(world: World) -> st.SearchStrategy[Any]:
    """Requests for every operation in HQ's OpenAPI document, valid and invalid by the schema."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.hq.client.app)
    return st.one_of(schema.as_strategy(GenerationMode.POSITIVE), schema.as_strategy(GenerationMode.NEGATIVE))


def body_of(case: Any) -> bytes:
    """The exact bytes sent (a device signs them); negative cases may carry raw bytes already."""
    if case.body is NOT_SET:
        return b""
    if isinstance(case.body, bytes):
        return case.body
    return json.dumps(case.body, ensure_ascii=False).encode("utf-8")


def test_a_stranger_gets_no_further_than_enrollment_and_never_a_5xx(world: World) -> None:
    seen: set[tuple[str, str]] = set()

    @EXAMPLES
    @given(case=cases(world))
    def stranger(case: Any) -> None:
        before = world.snapshot()
        response = case.call(data=body_of(case), headers={"Content-Type": "application/json"})
        case.validate_response(response, excluded_checks=SEMANTIC)
        route = (case.method.upper(), case.path)
        seen.add(route)
        if route not in PUBLIC:
            assert response.status_code in REFUSALS_BEFORE_AUTH, \
                f"{route} answered {response.status_code} to an unsigned request: {response.text[:200]}"
        assert world.snapshot() == before, "an unsigned request changed the bystander's data"

    stranger()
    assert len(seen) >= 5, f"schemathesis reached only {sorted(seen)}"


def test_an_enrolled_device_acts_only_on_itself_and_never_gets_a_5xx(world: World) -> None:
    seen: set[tuple[str, str]] = set()

    @EXAMPLES
    @given(case=cases(world))
    def device_call(case: Any) -> None:
        before = world.snapshot()
        device = world.current
        body = body_of(case)
        signed = device.prepare(case.method.upper(), case.formatted_path, body=body)
        response = case.call(data=body, headers=signed.headers)
        case.validate_response(response, excluded_checks=SEMANTIC)
        seen.add((case.method.upper(), case.path))
        assert response.status_code != 401 or response.json()["error"] != "bad_signature", \
            f"HQ refused a correctly signed request: {response.text[:200]}"
        if case.path == "/v1/unenroll" and response.status_code == 200:
            assert response.json()["device_id"] == device.device_id
            world.enroll()  # it retired itself: carry on with a fresh device
        assert world.snapshot() == before, "a device's request changed another device's data"
        strays = world.stored_devices() - {d.device_id for d in world.devices} - {world.bystander.device_id}
        assert not strays, f"events were stored under devices nobody enrolled: {strays}"

    device_call()
    assert len(seen) >= 5, f"schemathesis reached only {sorted(seen)}"
