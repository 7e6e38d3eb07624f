"""Unenrollment by an uninstalling agent."""

from __future__ import annotations

from tests.hq.conftest import Hq


def test_unenroll_revokes_the_device_and_records_an_event(hq: Hq) -> None:
    device = hq.device()
    response = device.signed("POST", "/v1/unenroll")
    assert response.status_code == 200, response.text
    assert response.json()["device_id"] == device.device_id
    assert "server_time" in response.json()
    record = hq.devices()[device.device_id]
    assert record["status"] == "revoked"
    assert record["revoked_reason"] == "uninstalled"
    [event] = hq.events(device_id=device.device_id)
    assert event["kind"] == "device.unenrolled"
    assert event["origin"] == "hq"
    after = device.heartbeat()
    assert after.status_code == 401
    assert after.json()["error"] == "device_revoked"
