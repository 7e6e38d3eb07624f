"""Signed-request verification: every refusal code of the wire contract, in order, and audited."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.signing import HEADER_SIGNATURE
from hq.store.devices import revoke_device
from tests.hq.conftest import Hq
from tests.hq.device_client import DeviceClient, heartbeat_payload


def refusal(response_json: dict[str, object]) -> str:
    return str(response_json["error"])


def denied_reasons(hq: Hq) -> list[str]:
    return [str(r["reason"]) for r in hq.audit() if r["action"] == "signed_request"]


def test_signed_heartbeat_is_accepted(hq: Hq) -> None:
    response = hq.device().heartbeat()
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"server_time", "policy_version", "heartbeat_interval_s"}
    assert response.json()["policy_version"] == 1


def test_missing_headers_are_bad_signature(hq: Hq) -> None:
    response = hq.client.post("/v1/heartbeat", json=heartbeat_payload())
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "bad_signature"
    assert "X-TG-Device" in body["detail"]
    assert isinstance(body["server_time"], float)
    assert denied_reasons(hq) == ["bad_signature"]


def test_unknown_device_is_refused_and_audited_with_the_claimed_id(hq: Hq) -> None:
    stranger = DeviceClient(hq.client)
    stranger.device_id = "00000000-0000-4000-8000-000000000000"
    response = stranger.heartbeat()
    assert response.status_code == 401
    assert refusal(response.json()) == "unknown_device"
    [record] = [r for r in hq.audit() if r["action"] == "signed_request"]
    assert record["device_id"] == stranger.device_id
    assert record["reason"] == "unknown_device"
    assert record["remote_addr"] == "testclient"
    assert record["path"] == "/v1/heartbeat"


def test_forged_signature_with_another_key_is_refused(hq: Hq) -> None:
    device = hq.device()
    response = device.signed("POST", "/v1/heartbeat", heartbeat_payload(), key=Ed25519PrivateKey.generate())
    assert response.status_code == 401
    assert refusal(response.json()) == "bad_signature"
    assert denied_reasons(hq) == ["bad_signature"]


def test_tampered_body_fails_the_signature(hq: Hq) -> None:
    device = hq.device()
    prepared = device.prepare("POST", "/v1/heartbeat", heartbeat_payload(staff="S1"))
    prepared.body = prepared.body.replace(b'"S1"', b'"S2"')
    response = device.send(prepared)
    assert response.status_code == 401
    assert refusal(response.json()) == "bad_signature"


def test_garbage_signature_header_is_bad_signature(hq: Hq) -> None:
    device = hq.device()
    prepared = device.prepare("POST", "/v1/heartbeat", heartbeat_payload())
    prepared.headers[HEADER_SIGNATURE] = "!!!not base64!!!"
    response = device.send(prepared)
    assert response.status_code == 401
    assert refusal(response.json()) == "bad_signature"


def test_signature_covers_the_path(hq: Hq) -> None:
    device = hq.device()
    prepared = device.prepare("GET", "/v1/policy?x=1")
    prepared.path = "/v1/policy"
    assert device.send(prepared).status_code == 401
    assert device.signed("GET", "/v1/policy?x=1").status_code == 200


def test_replayed_request_is_refused(hq: Hq) -> None:
    device = hq.device()
    prepared = device.prepare("POST", "/v1/heartbeat", heartbeat_payload())
    assert device.send(prepared).status_code == 200
    again = device.send(prepared)
    assert again.status_code == 401
    assert refusal(again.json()) == "replayed"
    assert "nonce" in again.json()["detail"]
    assert denied_reasons(hq) == ["replayed"]


def test_seq_that_does_not_increase_is_refused(hq: Hq) -> None:
    device = hq.device()
    assert device.heartbeat().status_code == 200  # seq 1
    assert device.signed("POST", "/v1/heartbeat", heartbeat_payload(), seq=5).status_code == 200
    for seq in (5, 4):
        response = device.signed("POST", "/v1/heartbeat", heartbeat_payload(), seq=seq)
        assert response.status_code == 401
        assert refusal(response.json()) == "replayed"
        assert "seq" in response.json()["detail"]
    assert device.signed("POST", "/v1/heartbeat", heartbeat_payload(), seq=6).status_code == 200


def test_microsecond_clock_sequence_numbers_are_accepted(hq: Hq) -> None:
    device = hq.device()
    seq = time.time_ns() // 1000  # what agent.sequence hands out
    assert device.signed("POST", "/v1/heartbeat", heartbeat_payload(), seq=seq).status_code == 200
    assert device.signed("POST", "/v1/heartbeat", heartbeat_payload(), seq=seq + 1).status_code == 200
    hq.state.flush()
    with hq.state.sessions() as session:
        from hq.db import Device

        assert session.get(Device, device.device_id).last_seq == seq + 1  # type: ignore[union-attr]


@pytest.mark.parametrize("offset", [-301, -3600, 61, 3600])
def test_timestamps_outside_the_window_are_stale_with_server_time(hq: Hq, offset: int) -> None:
    device = hq.device()
    before = time.time()
    response = device.signed("POST", "/v1/heartbeat", heartbeat_payload(), timestamp=int(time.time()) + offset)
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "stale_timestamp"
    assert before - 1 <= body["server_time"] <= time.time() + 1
    assert denied_reasons(hq) == ["stale_timestamp"]


@pytest.mark.parametrize("offset", [-290, 50])
def test_timestamps_inside_the_window_are_accepted(hq: Hq, offset: int) -> None:
    device = hq.device()
    response = device.signed("POST", "/v1/heartbeat", heartbeat_payload(), timestamp=int(time.time()) + offset)
    assert response.status_code == 200, response.text


def test_revoked_device_is_refused(hq: Hq) -> None:
    device = hq.device()
    assert device.heartbeat().status_code == 200
    with hq.state.sessions.begin() as session:  # as the CLI does, from outside the server's memory
        revoke_device(session, device_id=device.device_id, reason="test", now=time.time())
    hq.state.live.poll_revocations()
    response = device.heartbeat()
    assert response.status_code == 401
    assert refusal(response.json()) == "device_revoked"
    assert hq.devices()[device.device_id]["status"] == "revoked"


def test_revocation_is_checked_before_the_signature(hq: Hq) -> None:
    device = hq.device()
    with hq.state.sessions.begin() as session:
        revoke_device(session, device_id=device.device_id, reason="test", now=time.time())
    # First sight after the revocation: loaded from the database already revoked.
    response = device.signed("POST", "/v1/heartbeat", heartbeat_payload(), key=Ed25519PrivateKey.generate())
    assert refusal(response.json()) == "device_revoked"


def test_a_flood_of_forged_requests_is_audited_in_a_few_rows(hq: Hq) -> None:
    device = hq.device()
    forger = Ed25519PrivateKey.generate()
    for _ in range(200):
        response = device.signed("POST", "/v1/heartbeat", heartbeat_payload(), key=forger)
        assert response.status_code == 401
    rows = [r for r in hq.audit() if r["action"] == "signed_request"]
    assert len(rows) == 1
    assert rows[0]["count"] == 200
    assert rows[0]["reason"] == "bad_signature"


def test_only_the_stored_key_counts_not_one_in_the_message(hq: Hq) -> None:
    device = hq.device()
    intruder = Ed25519PrivateKey.generate()
    prepared = device.prepare("POST", "/v1/heartbeat", heartbeat_payload(), key=intruder)
    prepared.headers["X-TG-Public-Key"] = "anything"
    assert refusal(device.send(prepared).json()) == "bad_signature"
