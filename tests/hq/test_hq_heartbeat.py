"""Heartbeats: validated, kept in memory, flushed in batches, shown by `devices`."""

from __future__ import annotations

import time

import pytest

from hq.db import Device, make_engine, make_sessions
from hq.heartbeats import MAX_LOSS_REASONS, reported_losses
from hq.settings import Settings
from tests.hq.conftest import Hq, start_hq


def test_heartbeat_is_not_written_until_the_flush(hq: Hq) -> None:
    device = hq.device()
    assert device.heartbeat().status_code == 200
    with hq.state.sessions() as session:
        row = session.get(Device, device.device_id)
        assert row is not None and row.heartbeat_count == 0
    hq.state.flush()
    with hq.state.sessions() as session:
        row = session.get(Device, device.device_id)
        assert row is not None and row.heartbeat_count == 1


def test_heartbeat_appears_in_devices_after_flush(hq: Hq) -> None:
    device = hq.device()
    before = time.time()
    for staff in ("S1", "S2"):
        assert device.heartbeat(staff=staff, spool_depth=7, lost_events={"spool_full": 4}, policy_version=1,
                                agent_version="0.2.0", hostname="pc-renamed").status_code == 200
    record = hq.devices()[device.device_id]
    assert record["status"] == "online"
    assert record["heartbeat_count"] == 2
    assert record["agent_version"] == "0.2.0"
    assert record["policy_version"] == 1
    assert record["staff"] == "S2"
    assert record["spool_depth"] == 7
    assert record["lost_events"] == {"spool_full": 4}  # totals: the same heartbeat twice counts once
    assert record["hostname"] == "pc-renamed"
    assert record["interval_s"] == 10.0
    assert record["posture"]["os_users"] == ["staff01"]
    assert record["posture"]["remote_sessions"][0]["terminal"] == "rdp-tcp#1"
    assert record["last_heartbeat"] >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(before - 1))


def test_many_devices_flush_in_one_go(hq: Hq) -> None:
    devices = [hq.device() for _ in range(20)]
    for device in devices:
        for _ in range(3):
            assert device.heartbeat().status_code == 200
    assert hq.state.live.flush() == 20
    assert hq.state.live.flush() == 0  # nothing changed since
    assert {r["heartbeat_count"] for r in hq.devices().values()} == {3}


def test_minimal_heartbeat_keeps_stored_identity(hq: Hq) -> None:
    device = hq.device(hostname="pc-first")
    response = device.signed("POST", "/v1/heartbeat", {"agent_version": "0.1.0"})
    assert response.status_code == 200, response.text
    assert hq.devices()[device.device_id]["hostname"] == "pc-first"


def test_unknown_heartbeat_keys_are_ignored(hq: Hq) -> None:
    response = hq.device().heartbeat(some_future_field={"x": 1})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("spool_depth", "7"),
        ("spool_depth", -1),
        ("policy_version", 1.5),
        ("os_users", "staff01"),
        ("os_users", ["u"] * 65),
        ("lost_events", {"spool_full": "many"}),
        ("cpu_percent", "high"),
        ("interval_s", 0),
        ("staff", "x" * 65),
        ("agent_version", None),
    ],
)
def test_malformed_heartbeat_is_422_naming_the_field(hq: Hq, field: str, value: object) -> None:
    response = hq.device().heartbeat(**{field: value})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert field in response.json()["detail"]


def test_heartbeat_that_is_not_json_is_422(hq: Hq) -> None:
    device = hq.device()
    response = device.signed("POST", "/v1/heartbeat", body=b"{not json")
    assert response.status_code == 422


def test_oversized_heartbeat_is_413(hq: Hq) -> None:
    device = hq.device()
    response = device.signed("POST", "/v1/heartbeat", body=b"x" * (65 * 1024))
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


def test_clean_shutdown_flushes_heartbeats(hq_settings: Settings) -> None:
    running = start_hq(hq_settings)
    hq = next(running)
    device = hq.device()
    assert device.heartbeat().status_code == 200
    running.close()  # lifespan shutdown: the workers stop and flush once more
    engine = make_engine(hq_settings.db_url)
    try:
        with make_sessions(engine)() as session:
            row = session.get(Device, device.device_id)
            assert row is not None and row.heartbeat_count == 1
    finally:
        engine.dispose()


def test_lost_event_totals_are_the_latest_reported_across_a_restart(hq_settings: Settings) -> None:
    running = start_hq(hq_settings)
    hq = next(running)
    device = hq.device()
    assert device.heartbeat(lost_events={"spool_full": 3, "expired": 1}).status_code == 200
    assert device.heartbeat(lost_events={"spool_full": 3, "expired": 1}).status_code == 200  # a resend
    assert hq.devices()[device.device_id]["lost_events"] == {"spool_full": 3, "expired": 1}
    running.close()

    restarted = start_hq(hq_settings)
    hq = next(restarted)
    device.http = hq.client
    try:
        assert hq.devices()[device.device_id]["lost_events"] == {"spool_full": 3, "expired": 1}
        assert device.heartbeat(lost_events={"spool_full": 5, "expired": 1, "disk_full": 5}).status_code == 200
        assert hq.devices()[device.device_id]["lost_events"] == {"spool_full": 5, "expired": 1, "disk_full": 5}
    finally:
        restarted.close()


def test_lost_event_reasons_past_the_cap_are_not_kept() -> None:
    reported = {f"reason{i}": 1 for i in range(MAX_LOSS_REASONS)} | {"one_too_many": 7}
    kept = reported_losses(reported)
    assert len(kept) == MAX_LOSS_REASONS and "one_too_many" not in kept
    assert reported_losses({"spool_full": 2**63}) == {"spool_full": 2**62}
