"""An enrolled device (or whoever stole its key) sending values HQ's databases cannot take or its
views cannot show: NUL characters, lone UTF-16 surrogates, nesting deeper than the JSON parser
goes, timestamps a thousand years out. HQ answers 2xx or 4xx, never 5xx; one device's bad
values never cost another device anything; and every operator view keeps working. On SQLite and
on PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.events import Event
from hq import commands
from tests.abuse.conftest import InProcessHq

NUL = "a\x00b"
SURROGATE = "a\udcffb"


def post_events(hq: InProcessHq, events: list[dict[str, Any]]) -> Any:
    device = hq.device()
    return device.signed("POST", "/v1/events", body=json.dumps({"events": events}).encode())


def listing_works(hq: InProcessHq) -> list[dict[str, Any]]:
    hq.state.flush()
    return commands.events(hq.state.sessions, since=None, kind=None, device_id=None, limit=1000)


@pytest.mark.parametrize("label, event", [
    ("NUL in a body value", Event("finding", {"file.path": NUL}).to_wire()),
    ("NUL in a body key", Event("finding", {NUL: 1}).to_wire()),
    ("NUL in the kind", Event(NUL, {}).to_wire()),
    ("lone surrogate in a body value", Event("finding", {"process.command_line": SURROGATE}).to_wire()),
    ("lone surrogate in a body key", Event("finding", {SURROGATE: 1}).to_wire()),
    ("lone surrogate in the kind", Event(SURROGATE, {}).to_wire()),
])
def test_strings_a_database_cannot_store_get_no_5xx(hq_any_db: InProcessHq, label: str, event: dict) -> None:
    response = post_events(hq_any_db, [event])
    assert response.status_code < 500, f"{label}: HQ answered {response.status_code}: {response.text[:200]}"
    listing_works(hq_any_db)


def test_nesting_deeper_than_the_parser_goes_is_refused_not_a_5xx(hq_any_db: InProcessHq) -> None:
    deep = "[" * 5000 + "]" * 5000
    event = json.dumps(Event("finding", {}).to_wire()).replace('"body": {}', f'"body": {{"x": {deep}}}')
    device = hq_any_db.device()
    response = device.signed("POST", "/v1/events", body=f'{{"events": [{event}]}}'.encode())
    assert response.status_code == 422, response.text[:200]
    heartbeat = device.signed("POST", "/v1/heartbeat",
                              body=f'{{"agent_version": "0.1.0", "remote_sessions": [{deep}]}}'.encode())
    assert heartbeat.status_code == 422, heartbeat.text[:200]


@pytest.mark.parametrize("created", [1e15, -1e15, 253402300800.0, -62135596801.0])
def test_a_timestamp_far_outside_human_time_never_breaks_the_event_listing(hq_any_db: InProcessHq,
                                                                          created: float) -> None:
    response = post_events(hq_any_db, [Event("finding", {"rule": "r"}, created=created).to_wire()])
    assert response.status_code < 500, response.text[:200]
    try:
        listing_works(hq_any_db)
    except (ValueError, OverflowError, OSError) as exc:
        raise AssertionError(f"one event created at {created:g} breaks `terminal-guard-hq events` for everyone: "
                             f"{type(exc).__name__}: {exc}") from None


@pytest.mark.parametrize("field", ["hostname", "staff", "os", "agent_version"])
@pytest.mark.parametrize("value", [NUL, SURROGATE])
def test_one_devices_hostile_heartbeat_costs_no_other_device_its_heartbeats(hq_any_db: InProcessHq, field: str,
                                                                           value: str) -> None:
    hostile, honest = hq_any_db.device(), hq_any_db.device()
    body = json.dumps({"agent_version": "0.1.0", field: value}).encode()
    answer = hostile.signed("POST", "/v1/heartbeat", body=body)
    assert answer.status_code < 500, answer.text[:200]
    assert honest.heartbeat().status_code == 200
    try:
        hq_any_db.state.flush()
    except Exception as exc:
        raise AssertionError(f"a heartbeat with {field}={value!r} makes the heartbeat flush fail: "
                             f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    records = {r["device_id"]: r for r in commands.devices(hq_any_db.state.sessions, silent_after_s=60,
                                                              default_interval_s=10)}
    assert records[honest.device_id]["heartbeat_count"] == 1, \
        f"the honest device's heartbeat was not stored because another sent {field}={value!r}"


@pytest.mark.parametrize("hostname", [NUL, SURROGATE])
def test_enrolling_with_a_hostname_no_database_can_store_is_not_a_5xx(hq_any_db: InProcessHq, hostname: str) -> None:
    from tests.hq.device_client import DeviceClient, enrollment_body

    token = hq_any_db.token()
    response = hq_any_db.client.post("/v1/enroll", content=json.dumps(
        enrollment_body(token, DeviceClient(hq_any_db.client).key, hostname=hostname)).encode(),
        headers={"Content-Type": "application/json"})
    assert response.status_code < 500, response.text[:200]
