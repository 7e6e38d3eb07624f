"""Times a device reported that no calendar date holds (a `created` of 1e15, NaN's neighbours, years
outside 1–9999) are shown as the raw number wherever HQ turns a time into text, never a crash."""

from __future__ import annotations

import pytest

from hq.console.timeline import Mark, Segment, timeline_svg
from hq.siem.ecs import to_ecs
from hq.siem.sinks import Line, syslog_frame
from hq.timefmt import iso, strftime_at

FAR = [1e15, -1e15, 253402300800.0, -62135596801.0, float("inf")]


@pytest.mark.parametrize("ts", FAR)
def test_a_time_no_date_holds_is_shown_as_its_number(ts: float) -> None:
    assert iso(ts) == f"@{ts!r}"
    assert iso(ts, timespec="milliseconds") == f"@{ts!r}"
    assert strftime_at(ts, "%Y-%m-%d") == f"@{ts!r}"


def test_times_a_date_holds_are_unchanged() -> None:
    assert iso(1_700_000_000.5) == "2023-11-14T22:13:20Z"
    assert iso(1_700_000_000.5, timespec="milliseconds") == "2023-11-14T22:13:20.500Z"
    assert strftime_at(1_700_000_000.0, "%m-%d %H:%M", offset_s=3600) == "11-14 23:13"
    assert iso(None) is None


def test_an_ecs_document_keeps_a_far_created_out_of_its_date_fields() -> None:
    doc = to_ecs({"pk": 1, "event_id": "e1", "device_id": "d1", "kind": "finding", "priority": 2,
                  "created": 1e15, "received_at": 1_700_000_001.5, "origin": "agent", "body": {"rule": "r"}})
    assert doc["@timestamp"] == "2023-11-14T22:13:21.500Z"  # when HQ received it
    assert "created" not in doc["event"] and doc["terminal_guard"]["created"] == 1e15


def test_a_syslog_frame_for_a_far_created_uses_the_nil_timestamp() -> None:
    frame = syslog_frame(Line(pk=1, text="{}", priority=1, kind="finding", created=1e15), facility=16,
                         hostname="hq")
    assert frame.startswith(b"<133>1 - hq terminal-guard-hq ")


def test_a_timeline_with_a_far_segment_still_draws() -> None:
    now = 1_700_000_000.0
    svg = timeline_svg([Segment(start=-1e15, end=now, state="online")], [Mark(at=1e15, kind="finding")], now=now)
    assert "@-1000000000000000.0" in svg
