"""The heartbeat flush when the database refuses one device's values: the other devices' heartbeats
are still written, the refused row is dropped and logged, and a lost connection still retries whole."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from hq.db import Device
from tests.hq.conftest import Hq

# Values no API model lets through, standing in for whatever the next validation gap will be.
REFUSED = [
    ("hostname", "a\udcffb"),  # a lone surrogate: the driver cannot encode it (both databases)
    ("hostname", "a\x00b"),  # NUL: PostgreSQL's text refuses it (SQLite stores it)
    ("posture", {"cpu": {1, 2}}),  # nothing JSON can hold
    ("heartbeat_count", 2**70),  # past a 64-bit integer
]


def stored(hq: Hq, device_id: str) -> Device:
    with hq.state.sessions() as session:
        row = session.get(Device, device_id)
        assert row is not None
        return row


def poison(hq: Hq, device_id: str, column: str, value: Any) -> None:
    live = hq.state.live.get(device_id)
    assert live is not None
    if column == "heartbeat_count":
        live.heartbeat_count = value
    else:
        live.columns[column] = value


@pytest.mark.parametrize(("column", "value"), REFUSED)
def test_a_refused_value_costs_no_other_device_its_heartbeat(hq: Hq, column: str, value: Any,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    devices = [hq.device() for _ in range(7)]
    hostile = devices[3]
    for device in devices:
        assert device.heartbeat().status_code == 200
    poison(hq, hostile.device_id, column, value)

    with caplog.at_level(logging.ERROR, logger="hq.heartbeats"):
        assert hq.state.live.flush() == len(devices)

    for device in devices:
        if device is not hostile:
            assert stored(hq, device.device_id).heartbeat_count == 1
    row = stored(hq, hostile.device_id)
    if row.heartbeat_count == 0:  # dropped: logged, and its sequence number still kept
        assert f"heartbeat of device {hostile.device_id} not stored" in caplog.text
        assert row.last_seq == hq.state.live.get(hostile.device_id).last_seq  # type: ignore[union-attr]
    assert hq.state.live.flush() == 0, "a dropped row must not be queued again"


def test_the_device_whose_value_was_refused_is_stored_again_by_its_next_good_heartbeat(hq: Hq) -> None:
    honest, hostile = hq.device(), hq.device()
    assert hostile.heartbeat().status_code == 200
    poison(hq, hostile.device_id, "hostname", "a\udcffb")
    hq.state.live.flush()
    assert stored(hq, hostile.device_id).heartbeat_count == 0
    assert hostile.heartbeat(hostname="pc-fine").status_code == 200
    assert honest.heartbeat().status_code == 200
    hq.state.live.flush()
    assert (stored(hq, hostile.device_id).hostname, stored(hq, hostile.device_id).heartbeat_count) == ("pc-fine", 2)
    assert stored(hq, honest.device_id).heartbeat_count == 1


def test_a_lost_connection_is_retried_whole_not_dropped(hq: Hq, monkeypatch: pytest.MonkeyPatch) -> None:
    device = hq.device()
    assert device.heartbeat().status_code == 200

    def down(*_args: Any, **_kwargs: Any) -> None:
        raise OperationalError("UPDATE devices", {}, Exception("server closed the connection"))

    monkeypatch.setattr("hq.heartbeats.write_heartbeats", down)
    with pytest.raises(OperationalError):
        hq.state.live.flush()
    monkeypatch.undo()
    assert hq.state.live.flush() == 1
    assert stored(hq, device.device_id).heartbeat_count == 1
