"""One device posing as another, replaying or bending another's requests, or crowding out its
events: every attempt is refused with 401 and audited, and the victim's data never moves."""

from __future__ import annotations

import json

from agent.events import Event
from hq import commands
from tests.abuse.conftest import InProcessHq


def events_of(hq: InProcessHq, device_id: str) -> list[dict]:
    return commands.events(hq.state.sessions, since=None, kind=None, device_id=device_id, limit=1000)


def denials(hq: InProcessHq, reason: str) -> list[dict]:
    hq.state.flush()
    return [r for r in commands.audit(hq.state.sessions, since=None, limit=10_000)
            if r["outcome"] == "denied" and r["reason"] == reason]


def test_a_device_signing_with_its_own_key_as_another_device_is_refused_and_audited(hq: InProcessHq) -> None:
    mallory, victim = hq.device(), hq.device()
    for path, payload in (("/v1/events", {"events": [Event("forged", {"by": "mallory"}).to_wire()]}),
                          ("/v1/heartbeat", {"agent_version": "6.6.6", "staff": "S-FORGED"}),
                          ("/v1/unenroll", None)):
        response = mallory.signed("POST", path, payload, device_id=victim.device_id)
        assert response.status_code == 401 and response.json()["error"] == "bad_signature", response.text
    assert events_of(hq, victim.device_id) == []
    assert hq.devices()[victim.device_id]["status"] != "revoked"
    assert victim.heartbeat().status_code == 200, "the victim was locked out by the forgery"
    audited = denials(hq, "bad_signature")
    assert {r["device_id"] for r in audited} == {victim.device_id}


def test_a_captured_request_cannot_be_replayed_or_bent_to_another_use(hq: InProcessHq) -> None:
    victim = hq.device()
    batch = {"events": [Event("finding", {"rule": "real"}).to_wire()]}
    captured = victim.prepare("POST", "/v1/events", batch)
    assert victim.send(captured).status_code == 200
    replay = victim.send(captured)
    assert replay.status_code == 401 and replay.json()["error"] == "replayed"
    fresh = victim.prepare("POST", "/v1/events", batch)
    tampered = json.dumps({"events": [Event("finding", {"rule": "planted"}).to_wire()]}).encode()
    for method, path, body in (("POST", "/v1/events", tampered), ("POST", "/v1/unenroll", fresh.body),
                               ("POST", "/v1/heartbeat", fresh.body)):
        response = hq.client.request(method, path, content=body, headers=fresh.headers)
        assert response.status_code == 401 and response.json()["error"] == "bad_signature", (path, response.text)
    assert [e["body"]["rule"] for e in events_of(hq, victim.device_id)] == ["real"]


def test_reusing_another_devices_event_ids_does_not_suppress_its_events(hq: InProcessHq) -> None:
    mallory, victim = hq.device(), hq.device()
    upcoming = [Event("finding", {"rule": "victim's own"}) for _ in range(5)]
    squatted = [Event("finding", {"rule": "squat"}, id=e.id) for e in upcoming]
    assert mallory.send_events(squatted).json()["accepted"] == 5
    answer = victim.send_events(upcoming).json()
    assert answer == {**answer, "accepted": 5, "duplicates": 0}
    assert {e["event_id"] for e in events_of(hq, victim.device_id)} == {e.id for e in upcoming}


def test_unenroll_retires_only_the_caller_and_a_revoked_device_is_refused(hq: InProcessHq) -> None:
    leaving, staying = hq.device(), hq.device()
    assert leaving.signed("POST", "/v1/unenroll").json()["device_id"] == leaving.device_id
    refused = leaving.heartbeat()
    assert refused.status_code == 401 and refused.json()["error"] == "device_revoked"
    assert leaving.send_events([Event("late", {})]).status_code == 401
    assert staying.heartbeat().status_code == 200
    assert events_of(hq, leaving.device_id)[-1]["kind"] == "device.unenrolled"


def test_a_made_up_device_id_is_unknown_and_costs_no_database_write_per_try(hq: InProcessHq) -> None:
    mallory = hq.device()
    for attempt in range(50):
        response = mallory.signed("POST", "/v1/heartbeat", {"agent_version": "0.1.0"},
                                  device_id=f"00000000-0000-4000-8000-{attempt:012d}")
        assert response.status_code == 401 and response.json()["error"] == "unknown_device"
    # Audit records of one kind are folded together, so a flood of guesses is a handful of rows.
    rows = denials(hq, "unknown_device")
    assert sum(r["count"] for r in rows) == 50 and len(rows) <= 50
