"""The charts' numbers: alerts per day by category, and silent PCs rebuilt backwards from transitions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from hq.console.charts import DAY_S, alerts_per_day, line_chart, silent_over_time, stacked_bars
from hq.db import Device, create_schema, make_engine, make_sessions
from hq.store.devices import create_device
from hq.store.events import ORIGIN_AGENT, ORIGIN_HQ, insert_events

NOW = 1_800_000_000.0  # a fixed "now", so day boundaries are known


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker]:
    engine = make_engine(db_url)
    create_schema(engine)
    yield make_sessions(engine)
    engine.dispose()


def event(session: Session, device: str, kind: str, at: float, origin: str = ORIGIN_HQ, **body: object) -> None:
    insert_events(session, device_id=device, received_at=at, origin=origin,
                  events=[{"id": f"{kind}-{at}", "kind": kind, "priority": 2, "created": at, "body": body}])


def test_alerts_are_counted_per_day_and_category(sessions: sessionmaker) -> None:
    today = NOW // DAY_S * DAY_S
    with sessions.begin() as session:
        event(session, "d1", "finding", today + 10, ORIGIN_AGENT, category="export")
        event(session, "d1", "finding", today + 20, ORIGIN_AGENT, category="export")
        event(session, "d1", "finding", today - 10, ORIGIN_AGENT, category="tunnel")  # yesterday
        event(session, "d1", "alert.device_silent", today + 30)
        event(session, "d1", "alert.sharing.two_pcs", today + 40, staff_id="S1")
        event(session, "d1", "agent.started", today + 50, ORIGIN_AGENT)  # not an alert
        event(session, "d1", "finding", today - 20 * DAY_S, ORIGIN_AGENT, category="export")  # out of range
    with sessions() as session:
        days = alerts_per_day(session, now=NOW, days=14)
    assert len(days) == 14 and days[-1].day_start == today
    assert {k: v for k, v in days[-1].counts.items() if v} == {"export": 2, "silence": 1, "sharing": 1}
    assert {k: v for k, v in days[-2].counts.items() if v} == {"tunnel": 1}
    assert sum(day.total for day in days) == 5
    svg = str(stacked_bars(days))
    assert svg.count('class="cat-export"') == 2  # one bar segment and one legend key


def test_silent_pcs_over_time_are_rebuilt_backwards(sessions: sessionmaker) -> None:
    with sessions.begin() as session:
        for name in ("a", "b", "c"):
            create_device(session, outlet_id="o", public_key="k", hostname=name, os="w", agent_version="1",
                          now=NOW - 10 * 3600).id = name
        session.flush()
        # a: silent 5 h ago, still silent. b: silent 4 h ago, back 2 h ago. c: silent 3 h ago, revoked 1 h ago.
        event(session, "a", "alert.device_silent", NOW - 5 * 3600 + 1)
        event(session, "b", "alert.device_silent", NOW - 4 * 3600 + 1)
        event(session, "b", "device.back_online", NOW - 2 * 3600 + 1)
        event(session, "c", "alert.device_silent", NOW - 3 * 3600 + 1)
        event(session, "b", "alert.device_silent", NOW - 3 * 3600 + 1, ORIGIN_AGENT)  # a PC cannot fake one
        session.execute(update(Device).where(Device.id.in_(["a", "c"])).values(silent=True))
        session.execute(update(Device).where(Device.id == "c").values(revoked_at=NOW - 3600 + 1))
    with sessions() as session:
        points = silent_over_time(session, now=NOW, hours=6)
    assert [count for _, count in points] == [0, 0, 1, 2, 3, 2, 1]  # at -6 h, -5 h, ... now
    assert points[-1][0] == NOW
    assert "peak 3" in str(line_chart(points, label="silent"))
