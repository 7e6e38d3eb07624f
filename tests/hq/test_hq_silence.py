"""The silent monitor: exactly one alert per silence, cleared by the next heartbeat."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from hq.silence import ALERT_DEVICE_SILENT
from tests.hq.conftest import Hq

StartHq = Callable[..., Hq]


def alerts(hq: Hq, device_id: str) -> list[dict[str, Any]]:
    return hq.events(kind=ALERT_DEVICE_SILENT, device_id=device_id)


def test_silent_transition_raises_exactly_one_alert(make_hq: StartHq) -> None:
    hq = make_hq(silent_after_s=60)
    device = hq.device()
    assert device.heartbeat(interval_s=10).status_code == 200
    hq.state.flush()
    now = time.time()
    assert hq.state.silence.check(now=now + 30) == []  # within interval + 60 s
    assert hq.state.silence.check(now=now + 75) == [device.device_id]
    assert hq.state.silence.check(now=now + 80) == []
    assert hq.state.silence.check(now=now + 500) == []
    [alert] = alerts(hq, device.device_id)
    assert alert["origin"] == "hq"
    assert alert["body"]["device_id"] == device.device_id
    assert alert["body"]["last_heartbeat"] is not None
    assert hq.devices()[device.device_id]["status"] == "silent"


def test_back_online_clears_and_a_later_silence_alerts_again(make_hq: StartHq) -> None:
    hq = make_hq(silent_after_s=60)
    device = hq.device()
    device.heartbeat(interval_s=10)
    hq.state.flush()
    assert hq.state.silence.check(now=time.time() + 100) == [device.device_id]
    assert device.heartbeat(interval_s=10).status_code == 200
    assert hq.devices()[device.device_id]["status"] == "online"
    assert [e["kind"] for e in hq.events(device_id=device.device_id)] == [ALERT_DEVICE_SILENT, "device.back_online"]
    assert hq.state.silence.check(now=time.time() + 100) == [device.device_id]
    assert len(alerts(hq, device.device_id)) == 2


def test_never_heartbeated_device_counts_from_enrollment(make_hq: StartHq) -> None:
    hq = make_hq(silent_after_s=60, heartbeat_interval_s=10)
    device = hq.device()
    assert hq.state.silence.check(now=time.time() + 50) == []
    assert hq.state.silence.check(now=time.time() + 80) == [device.device_id]
    assert alerts(hq, device.device_id)[0]["body"]["last_heartbeat"] is None


def test_unflushed_heartbeat_keeps_a_device_online(make_hq: StartHq) -> None:
    hq = make_hq(silent_after_s=1)
    device = hq.device()
    device.heartbeat(interval_s=1)
    hq.state.flush()
    time.sleep(2.2)
    device.heartbeat(interval_s=1)  # in memory only: the database still shows the old beat
    assert hq.state.silence.check() == []
    assert alerts(hq, device.device_id) == []


def test_revoked_devices_are_not_reported_silent(make_hq: StartHq) -> None:
    hq = make_hq(silent_after_s=60)
    device = hq.device()
    assert device.signed("POST", "/v1/unenroll").status_code == 200
    assert hq.state.silence.check(now=time.time() + 1000) == []
    assert hq.devices()[device.device_id]["status"] == "revoked"


def test_monitor_thread_raises_the_alert_by_itself(make_hq: StartHq) -> None:
    hq = make_hq(silent_after_s=0.5, silence_check_s=0.1, flush_interval_s=0.1)
    device = hq.device()
    device.heartbeat(interval_s=1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not alerts(hq, device.device_id):
        time.sleep(0.2)
    assert len(alerts(hq, device.device_id)) == 1
