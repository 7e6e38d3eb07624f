"""A device that reports an event created a thousand years out breaks no console page."""

from __future__ import annotations

import re

from agent.events import Event
from tests.hq.console.conftest import ConsoleHq


def test_pages_show_a_finding_created_at_a_time_no_date_holds(console: ConsoleHq) -> None:
    device = console.hq.device("outlet-a", hostname="pc-far")
    assert device.send_events([Event("finding", {"rule": "r-far", "title": "far out", "category": "export"},
                                     created=1e15, priority=2)]).status_code == 200
    console.state.flush()
    viewer = console.browser("viewer")
    queue = viewer.get("/console/alerts")
    assert queue.status_code == 200 and "far out" in queue.text
    pk = re.findall(r'<a href="/console/alerts/(\d+)">far out</a>', queue.text)[0]
    alert = viewer.get(f"/console/alerts/{pk}")
    assert alert.status_code == 200 and "@1000000000000000.0" in alert.text
    assert viewer.get(f"/console/devices/{device.device_id}").status_code == 200
