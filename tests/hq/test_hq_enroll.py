"""Enrollment: proof of key possession, one-time and N-use tokens, expiry, and the audit trail."""

from __future__ import annotations

import threading
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.signing import public_key_text
from hq.enrollment import InvalidToken, enroll_device
from tests.hq.conftest import Hq
from tests.hq.device_client import DeviceClient, enrollment_body


def test_enroll_returns_device_outlet_policy_key_and_server_time(hq: Hq) -> None:
    device = DeviceClient(hq.client)
    before = time.time()
    response = device.enroll(hq.token("outlet-7"))
    assert response.status_code == 200, response.text
    data = response.json()
    assert set(data) == {"device_id", "outlet_id", "policy_public_key", "heartbeat_interval_s", "server_time"}
    assert data["outlet_id"] == "outlet-7"
    assert data["policy_public_key"] == public_key_text(hq.state.policy_key)
    assert data["heartbeat_interval_s"] == 10.0
    assert before <= data["server_time"] <= time.time()
    listed = hq.devices()[data["device_id"]]
    assert listed["outlet_id"] == "outlet-7"
    assert listed["hostname"] == "pc-test-01"
    assert listed["status"] == "online"
    assert listed["heartbeat_count"] == 0


def test_enrollment_never_echoes_the_token(hq: Hq) -> None:
    token = hq.token()
    response = DeviceClient(hq.client).enroll(token)
    assert token not in response.text
    assert all(token not in str(record) for record in hq.audit())


def test_reused_one_time_token_is_refused_and_audited(hq: Hq) -> None:
    token = hq.token(uses=1)
    assert DeviceClient(hq.client).enroll(token).status_code == 200
    second = DeviceClient(hq.client).enroll(token)
    assert second.status_code == 403
    assert second.json()["error"] == "invalid_token"
    assert "server_time" in second.json()
    denied = [r for r in hq.audit() if r["action"] == "enroll" and r["outcome"] == "denied"]
    assert [r["reason"] for r in denied] == ["used_up_token"]
    assert denied[0]["remote_addr"] == "testclient"
    assert denied[0]["path"] == "/v1/enroll"


def test_expired_token_is_refused(hq: Hq) -> None:
    token = hq.token(ttl_s=60, now=time.time() - 61)
    response = DeviceClient(hq.client).enroll(token)
    assert response.status_code == 403
    assert response.json()["error"] == "invalid_token"
    assert [r["reason"] for r in hq.audit() if r["outcome"] == "denied"] == ["expired_token"]


def test_unknown_token_is_refused(hq: Hq) -> None:
    response = DeviceClient(hq.client).enroll("not-a-token-anyone-made")
    assert response.status_code == 403
    assert [r["reason"] for r in hq.audit() if r["outcome"] == "denied"] == ["unknown_token"]


def test_n_use_token_enrolls_exactly_n_devices(hq: Hq) -> None:
    token = hq.token(uses=3)
    codes = [DeviceClient(hq.client).enroll(token).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 403]
    assert len(hq.devices()) == 3


def test_bad_proof_is_400_and_does_not_spend_the_token(hq: Hq) -> None:
    token = hq.token(uses=1)
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    body = enrollment_body(token, key)
    body["public_key"] = public_key_text(other)  # proof made with a key other than the one registered
    response = hq.client.post("/v1/enroll", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_proof"
    assert "proof" in response.json()["detail"]
    assert DeviceClient(hq.client).enroll(token).status_code == 200


def test_malformed_public_key_is_400_naming_the_field(hq: Hq) -> None:
    body = enrollment_body(hq.token(), Ed25519PrivateKey.generate())
    body["public_key"] = "AAAA"
    response = hq.client.post("/v1/enroll", json=body)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("public_key:")


def test_missing_field_is_422_naming_the_field(hq: Hq) -> None:
    body = enrollment_body(hq.token(), Ed25519PrivateKey.generate())
    del body["hostname"]
    response = hq.client.post("/v1/enroll", json=body)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert "hostname" in response.json()["detail"]


def test_concurrent_use_of_a_one_time_token_enrolls_one_device(hq: Hq) -> None:
    token = hq.token(uses=1)
    key = Ed25519PrivateKey.generate()
    results: list[str] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        try:
            enroll_device(hq.state.sessions, token=token, public_key=public_key_text(key), hostname="pc",
                          os="Windows", agent_version="0.1.0", now=time.time())
            results.append("ok")
        except InvalidToken as exc:
            results.append(exc.reason)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == ["ok"] + ["used_up_token"] * 7
    assert len(hq.devices()) == 1


def test_concurrent_http_enrollments_with_a_one_time_token(hq: Hq) -> None:
    token = hq.token(uses=1)
    codes: list[int] = []
    barrier = threading.Barrier(6)

    def attempt() -> None:
        device = DeviceClient(hq.client)
        barrier.wait()
        codes.append(device.enroll(token).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(codes) == [200, 403, 403, 403, 403, 403]
