"""Event ingest: idempotent on (device, event id), answered after commit, bounded in size."""

from __future__ import annotations

import json

import pytest

from agent.events import PRIORITY_CRITICAL, Event
from tests.hq.conftest import Hq


def finding(n: int) -> Event:
    return Event("finding.export", {"rule": "bulk-export", "rows": n, "pii.counts": {"mobile": n}},
                 priority=PRIORITY_CRITICAL)


def test_events_are_stored_and_counted(hq: Hq) -> None:
    device = hq.device()
    batch = [finding(n) for n in range(5)]
    response = device.send_events(batch)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 5 and body["duplicates"] == 0
    assert isinstance(body["server_time"], float)
    stored = hq.events(device_id=device.device_id)
    assert [e["event_id"] for e in stored] == [e.id for e in batch]
    assert stored[0]["kind"] == "finding.export"
    assert stored[0]["origin"] == "agent"
    assert stored[0]["priority"] == PRIORITY_CRITICAL
    assert stored[0]["body"] == {"rule": "bulk-export", "rows": 0, "pii.counts": {"mobile": 0}}


def test_same_batch_twice_is_stored_once(hq: Hq) -> None:
    device = hq.device()
    batch = [finding(n) for n in range(10)]
    assert device.send_events(batch).json()["accepted"] == 10
    again = device.send_events(batch).json()
    assert (again["accepted"], again["duplicates"]) == (0, 10)
    mixed = device.send_events([*batch[:3], finding(99)]).json()
    assert (mixed["accepted"], mixed["duplicates"]) == (1, 3)
    assert len(hq.events(device_id=device.device_id)) == 11


def test_duplicate_ids_inside_one_batch_count_as_duplicates(hq: Hq) -> None:
    event = finding(1)
    body = hq.device().send_events([event, event, event]).json()
    assert (body["accepted"], body["duplicates"]) == (1, 2)


def test_event_ids_are_unique_per_device_not_globally(hq: Hq) -> None:
    first, second = hq.device(), hq.device()
    event = finding(1)
    assert first.send_events([event]).json()["accepted"] == 1
    # Another device sending the same id (by accident or on purpose) cannot suppress the first's events,
    # nor have its own dropped.
    assert second.send_events([event]).json()["accepted"] == 1
    assert len(hq.events()) == 2


def test_empty_batch_is_fine(hq: Hq) -> None:
    body = hq.device().signed("POST", "/v1/events", {"events": []}).json()
    assert (body["accepted"], body["duplicates"]) == (0, 0)


def test_more_than_500_events_is_413(hq: Hq) -> None:
    response = hq.device().send_events([Event("x", {}) for _ in range(501)])
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert "500" in response.json()["detail"]


def test_500_events_are_accepted(hq: Hq) -> None:
    assert hq.device().send_events([Event("x", {}) for _ in range(500)]).json()["accepted"] == 500


def test_body_over_one_mebibyte_is_413(hq: Hq) -> None:
    device = hq.device()
    big = {"events": [Event("x", {"pad": "a" * 1024 * 1024}).to_wire()]}
    response = device.signed("POST", "/v1/events", big)
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


def test_body_larger_than_its_content_length_claims_is_cut_off(hq: Hq) -> None:
    device = hq.device()
    body = json.dumps({"events": [Event("x", {"pad": "a" * (1024 * 1024 + 10)}).to_wire()]}).encode()
    prepared = device.prepare("POST", "/v1/events", body=body)

    def chunks():  # type: ignore[no-untyped-def]
        for start in range(0, len(body), 65536):
            yield body[start:start + 65536]

    # A streamed body has no Content-Length: only the count of bytes read can stop it.
    response = device.http.request("POST", "/v1/events", content=chunks(), headers=prepared.headers)
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e.update(priority=7), "events[1].priority"),
        (lambda e: e.update(priority="high"), "events[1].priority"),
        (lambda e: e.pop("kind"), "events[1].kind"),
        (lambda e: e.update(id=""), "events[1].id"),
        (lambda e: e.update(id="a b"), "events[1].id"),
        (lambda e: e.update(body=[1, 2]), "events[1].body"),
        (lambda e: e.update(created="yesterday"), "events[1].created"),
        (lambda e: e.update(kind="k" * 65), "events[1].kind"),
        # A lone surrogate: PostgreSQL's JSONB refuses it, so HQ refuses it on every database.
        (lambda e: e.update(body={"process.command_line": "a\udcffb"}), "events[1].body"),
        (lambda e: e.update(body={"a\ud800b": 1}), "events[1].body"),
        (lambda e: e.update(body={"x": [{"y": ["\udfff"]}]}), "events[1].body"),
    ],
)
def test_malformed_event_is_422_naming_the_field(hq: Hq, mutate, field: str) -> None:  # type: ignore[no-untyped-def]
    wire = [finding(0).to_wire(), finding(1).to_wire()]
    mutate(wire[1])
    response = hq.device().signed("POST", "/v1/events", {"events": wire})
    assert response.status_code == 422
    assert response.json()["detail"].startswith(field)


def test_not_a_batch_is_422(hq: Hq) -> None:
    device = hq.device()
    for body in (b"[]", b'{"events": 3}', b"{}", b'{"events": [NaN]}'):
        response = device.signed("POST", "/v1/events", body=body)
        assert response.status_code == 422, body


def test_a_lone_surrogate_in_an_event_body_is_refused_saying_why(hq: Hq) -> None:
    wire = finding(0).to_wire()
    wire["body"] = {"file.path": "C:\\exports\\\udcff.csv"}
    response = hq.device().signed("POST", "/v1/events", {"events": [wire]})
    assert response.status_code == 422
    assert "events[0].body" in response.json()["detail"] and "surrogate" in response.json()["detail"]
    assert hq.events() == []
