"""The real `terminal-guard-hq serve` over HTTPS with the CA pinned, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.policy import parse_policy
from hq.tls import ensure_tls
from tests.hq.device_client import DeviceClient, heartbeat_payload, pinned_client
from tests.hq_server import HqServer


def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def make_token(hq: HqServer, uses: int = 1) -> str:
    done = hq.cli("token", "create", "--outlet", "outlet-9", "--uses", str(uses))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def devices(hq: HqServer) -> dict[str, dict[str, Any]]:
    done = hq.cli("devices", "--json")
    assert done.returncode == 0, done.stderr
    return {record["device_id"]: record for record in json_lines(done.stdout)}


def audit_reasons(hq: HqServer) -> list[str]:
    done = hq.cli("audit", "--json")
    assert done.returncode == 0, done.stderr
    return [r["reason"] for r in json_lines(done.stdout) if r["outcome"] == "denied"]


@pytest.fixture
def server(db_url: str) -> Iterator[HqServer]:
    with HqServer(db_url, extra_args=("--silent-after-s", "1")) as hq:
        yield hq


@pytest.fixture
def http(server: HqServer) -> Iterator[httpx.Client]:
    with pinned_client(server.url, str(server.ca_file)) as client:
        yield client


def enrolled(server: HqServer, http: httpx.Client) -> DeviceClient:
    device = DeviceClient(http)
    response = device.enroll(make_token(server))
    assert response.status_code == 200, response.text
    return device


def test_enroll_and_heartbeat_over_pinned_https(server: HqServer, http: httpx.Client) -> None:
    device = enrolled(server, http)
    response = device.heartbeat(interval_s=30)
    assert response.status_code == 200, response.text
    policy = device.policy().json()
    assert parse_policy(policy["policy"], policy["signature"], device.policy_public_key).version == 1
    listed = wait_for(lambda: devices(server)[device.device_id]["heartbeat_count"] == 1)
    assert listed, devices(server)
    record = devices(server)[device.device_id]
    assert record["status"] == "online"
    assert record["outlet_id"] == "outlet-9"


def test_refusals_over_https_are_audited(server: HqServer, http: httpx.Client) -> None:
    device = enrolled(server, http)
    prepared = device.prepare("POST", "/v1/heartbeat", heartbeat_payload(interval_s=30))
    assert device.send(prepared).status_code == 200
    replay = device.send(prepared)
    assert (replay.status_code, replay.json()["error"]) == (401, "replayed")
    forged = device.signed("POST", "/v1/heartbeat", heartbeat_payload(), key=Ed25519PrivateKey.generate())
    assert forged.json()["error"] == "bad_signature"
    stale = device.signed("POST", "/v1/heartbeat", heartbeat_payload(), timestamp=int(time.time()) - 3600)
    assert stale.json()["error"] == "stale_timestamp"
    assert abs(stale.json()["server_time"] - time.time()) < 5
    future = device.signed("POST", "/v1/heartbeat", heartbeat_payload(), timestamp=int(time.time()) + 3600)
    assert future.json()["error"] == "stale_timestamp"
    low_seq = device.signed("POST", "/v1/heartbeat", heartbeat_payload(), seq=1)
    assert low_seq.json()["error"] == "replayed"
    stranger = DeviceClient(http)
    stranger.device_id = "no-such-device"
    assert stranger.heartbeat().json()["error"] == "unknown_device"
    expected = ["replayed", "bad_signature", "stale_timestamp", "stale_timestamp", "replayed", "unknown_device"]
    assert wait_for(lambda: sorted(audit_reasons(server)) == sorted(expected)), audit_reasons(server)


def test_reused_token_is_403_and_audited(server: HqServer, http: httpx.Client) -> None:
    token = make_token(server)
    assert DeviceClient(http).enroll(token).status_code == 200
    again = DeviceClient(http).enroll(token)
    assert (again.status_code, again.json()["error"]) == (403, "invalid_token")
    assert wait_for(lambda: audit_reasons(server) == ["used_up_token"]), audit_reasons(server)


def test_concurrent_enrollments_with_one_use_token(server: HqServer) -> None:
    token = make_token(server)
    codes: list[int] = []
    barrier = threading.Barrier(6)

    def attempt() -> None:
        with pinned_client(server.url, str(server.ca_file)) as client:
            device = DeviceClient(client)
            barrier.wait()
            codes.append(device.enroll(token).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(codes) == [200, 403, 403, 403, 403, 403]
    assert len(devices(server)) == 1


def test_cli_revoke_reaches_the_running_server(server: HqServer, http: httpx.Client) -> None:
    device = enrolled(server, http)
    assert device.heartbeat(interval_s=30).status_code == 200
    done = server.cli("revoke", "--device", device.device_id)
    assert done.returncode == 0, done.stderr

    def refused() -> bool:
        return device.heartbeat(interval_s=30).status_code == 401

    assert wait_for(refused, timeout=10)
    assert device.heartbeat().json()["error"] == "device_revoked"
    assert devices(server)[device.device_id]["status"] == "revoked"


def test_restart_keeps_heartbeats_and_the_sequence(server: HqServer, http: httpx.Client) -> None:
    device = enrolled(server, http)
    old = device.prepare("POST", "/v1/heartbeat", heartbeat_payload(interval_s=30), seq=5)
    assert device.signed("POST", "/v1/heartbeat", heartbeat_payload(interval_s=30), seq=10).status_code == 200
    http.close()  # no idle keep-alive connection for the graceful shutdown to wait on
    assert server.stop() == 0
    assert devices(server)[device.device_id]["heartbeat_count"] == 1  # flushed on the clean shutdown
    server.start()
    with pinned_client(server.url, str(server.ca_file)) as fresh:
        device.http = fresh
        refused = device.send(old)  # a never-seen nonce, but a sequence number below the stored one
        assert (refused.status_code, refused.json()["error"]) == (401, "replayed")
        assert device.signed("POST", "/v1/heartbeat", heartbeat_payload(interval_s=30), seq=11).status_code == 200


def test_silent_pc_raises_one_alert_and_comes_back(server: HqServer, http: httpx.Client) -> None:
    device = enrolled(server, http)
    assert device.heartbeat(interval_s=1).status_code == 200

    def silent_alerts() -> list[dict[str, Any]]:
        done = server.cli("events", "--json", "--kind", "alert.device_silent", "--device", device.device_id)
        assert done.returncode == 0, done.stderr
        return json_lines(done.stdout)

    assert wait_for(silent_alerts, timeout=15), server.log()
    assert devices(server)[device.device_id]["status"] == "silent"
    time.sleep(1.5)  # several more monitor rounds: still one alert
    assert len(silent_alerts()) == 1
    assert device.heartbeat(interval_s=30).status_code == 200
    assert wait_for(lambda: devices(server)[device.device_id]["status"] == "online")


def test_events_over_https_are_idempotent(server: HqServer, http: httpx.Client) -> None:
    from agent.events import Event

    device = enrolled(server, http)
    batch = [Event("finding.test", {"n": n}) for n in range(50)]
    assert device.send_events(batch).json()["accepted"] == 50
    assert device.send_events(batch).json()["duplicates"] == 50
    done = server.cli("events", "--json", "--device", device.device_id)
    assert len(json_lines(done.stdout)) == 50


@pytest.fixture
def sqlite_server() -> Iterator[HqServer]:
    with HqServer(extra_args=("--max-inflight", "1")) as hq:
        yield hq


def test_an_unpinned_client_does_not_trust_hq(sqlite_server: HqServer) -> None:
    with httpx.Client(base_url=sqlite_server.url) as client, pytest.raises(httpx.ConnectError):
        client.get("/openapi.json")


def test_only_enroll_is_unauthenticated_and_openapi_is_served(sqlite_server: HqServer) -> None:
    with pinned_client(sqlite_server.url, str(sqlite_server.ca_file)) as client:
        schema = client.get("/openapi.json").json()
        binding = {"/v1/session/challenge", "/v1/session/signin", "/v1/session/refresh", "/v1/session/signout",
                   "/v1/verify", "/v1/activity"}
        assert set(schema["paths"]) == {"/v1/enroll", "/v1/heartbeat", "/v1/events", "/v1/policy", "/v1/unenroll",
                                        *binding}
        assert "HeartbeatIn" in schema["components"]["schemas"]
        for path in sorted(binding):
            assert client.post(path, json={}).status_code == 401, path
        assert client.get("/v1/verify").status_code == 401
        assert client.get("/v1/noop").status_code == 404
        assert client.get("/docs").status_code == 404


def test_streamed_oversize_body_is_cut_off(sqlite_server: HqServer) -> None:
    with pinned_client(sqlite_server.url, str(sqlite_server.ca_file)) as client:
        def chunks() -> Iterator[bytes]:
            for _ in range(20):
                yield b"x" * 65536

        response = client.post("/v1/events", content=chunks())
        assert (response.status_code, response.json()["error"]) == (413, "too_large")


def test_requests_over_max_inflight_get_429_with_retry_after(sqlite_server: HqServer) -> None:
    token = sqlite_server.cli("token", "create", "--outlet", "o-busy").stdout.strip().splitlines()[-1]
    # A request HQ is working on occupies the only slot: an enrollment waiting for the database,
    # which the test holds locked. (A body still on its way holds none: test_slow_bodies.py.)
    lock = sqlite3.connect(sqlite_server.data_dir / "hq.sqlite3", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    with pinned_client(sqlite_server.url, str(sqlite_server.ca_file), timeout=60) as enrolling_http, \
            pinned_client(sqlite_server.url, str(sqlite_server.ca_file)) as client, \
            ThreadPoolExecutor(1) as pool:
        try:
            enrolling = pool.submit(DeviceClient(enrolling_http).enroll, token)
            time.sleep(1.0)
            response = client.get("/v1/policy")
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        assert enrolling.result().status_code == 200  # the held request went on once the database was free
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"] == "busy"


def test_bench_noop_route_only_when_asked() -> None:
    with HqServer(extra_args=("--bench-noop",)) as hq, pinned_client(hq.url, str(hq.ca_file)) as client:
        response = client.get("/v1/noop")
        assert (response.status_code, response.json()) == (200, {})


def test_serve_uses_a_given_certificate_instead_of_its_own_ca(tmp_path: Path) -> None:
    own = ensure_tls(tmp_path / "corporate-pki", "127.0.0.1")
    data_dir = tmp_path / "hq"
    data_dir.mkdir()
    shutil.copy(own.ca_cert, data_dir / "ca.pem")  # what HqServer pins
    with HqServer(data_dir=data_dir, extra_args=("--cert", str(own.server_cert), "--key", str(own.server_key))) as hq, \
            pinned_client(hq.url, str(hq.ca_file)) as client:
        assert client.get("/openapi.json").status_code == 200
        assert not (data_dir / "server.pem").exists()
        assert not (data_dir / "ca-key.pem").exists()
