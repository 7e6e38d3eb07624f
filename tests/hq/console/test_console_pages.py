"""What the security team sees and does: fleet, PC pages, the alert queue, triage, revoke, policies,
sharing cases, suspensions and the acknowledgement register, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from agent.events import Event
from agent.policy import parse_policy
from hq.console.actions import list_actions
from hq.store.events import ORIGIN_HQ, record_hq_event
from tests.hq.console.conftest import Browser, ConsoleHq
from tests.hq.device_client import DeviceClient


def finding(rule: str, category: str, severity: str = "high", **fields: Any) -> Event:
    priority = {"low": 0, "medium": 1, "high": 2, "critical": 3}[severity]
    return Event("finding", {"rule": rule, "title": f"title of {rule}", "severity": severity, "category": category,
                             **fields}, priority=priority)


def pks(page: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-pk="(\d+)"', page)]


def fleet_of_three(console: ConsoleHq) -> tuple[DeviceClient, DeviceClient, DeviceClient]:
    online = console.hq.device("outlet-a", hostname="pc-online")
    silent = console.hq.device("outlet-a", hostname="pc-silent")
    revoked = console.hq.device("outlet-b", hostname="pc-revoked")
    for device, name in ((online, "pc-online"), (silent, "pc-silent"), (revoked, "pc-revoked")):
        assert device.heartbeat(interval_s=10, hostname=name).status_code == 200
    console.state.flush()
    # Everyone overdue two minutes on (silent after 60 s) ... The alert is stamped with that time
    # and the chart ends today (UTC): in the day's last two minutes, wait for tomorrow first.
    now = time.time()
    if (now + 120) // 86400 != now // 86400:
        time.sleep((now // 86400 + 1) * 86400 - now + 1)
    console.state.silence.check(now=time.time() + 120)
    assert online.heartbeat(interval_s=10, hostname="pc-online").status_code == 200  # ... but this one beat again
    console.state.flush()
    return online, silent, revoked


def test_fleet_overview_counts_outlets_and_draws_charts(console: ConsoleHq) -> None:
    _online, _silent, revoked = fleet_of_three(console)
    admin = console.browser("admin")
    admin.post(f"/console/devices/{revoked.device_id}/revoke", {"reason": "stolen"})
    page = admin.get("/console/").text
    assert re.search(r'id="count-online">1<', page)
    assert re.search(r'id="count-silent">1<', page)
    assert re.search(r'id="count-revoked">1<', page)
    rows = re.findall(r"<tr(?: class=\"warn\")?>\s*<td><a href=\"/console/outlets/([^\"]+)\">", page)
    assert rows == ["outlet-a", "outlet-b"]  # the outlet with a silent PC first
    assert page.count("<svg") == 2 and "alerts per day by category" in page and "silent PCs" in page
    assert 'class="cat-silence"' in page  # the silence alerts are in today's bar


def test_device_lists_filter_by_status_outlet_and_name(console: ConsoleHq) -> None:
    fleet_of_three(console)
    viewer = console.browser("viewer")
    silent = viewer.get("/console/devices?status=silent").text
    assert "pc-silent" in silent and "pc-online" not in silent
    outlet = viewer.get("/console/outlets/outlet-a").text
    assert "pc-online" in outlet and "pc-silent" in outlet and "pc-revoked" not in outlet
    assert "pc-online" in viewer.get("/console/devices?q=pc-on").text
    assert viewer.get("/console/devices?status=bogus").status_code == 400


def test_pc_page_shows_posture_timeline_findings_and_acknowledgements(console: ConsoleHq) -> None:
    device = console.hq.device("outlet-a", hostname="pc-front-desk")
    assert device.heartbeat(staff="S2001", remote_sessions=[{"user": "x", "host": "10.1.1.1"}],
                            hostname="pc-front-desk").status_code == 200
    assert device.send_events([
        Event("agent.started", {"version": "0.1.0"}),
        finding("remote_tool_anydesk", "remote_access", "critical", **{"process.name": "AnyDesk.exe"}),
        Event("policy.acknowledged", {"staff_id": "S2001", "policy_version": 1}),
        # The signed shape session binding sends: the claims sit inside the document.
        Event("policy.acknowledged", {"document": {"staff": "S2002", "policy_version": 1, "policy_hash": "cd" * 32},
                                      "signature": "not-checked-here"}),
    ]).status_code == 200
    console.state.flush()
    page = console.browser("viewer").get(f"/console/devices/{device.device_id}").text
    assert "pc-front-desk" in page and "S2001" in page and "remote session" not in page  # the pill is on lists
    assert "10.1.1.1" in page  # the remote session, in posture
    assert 'class="chart timeline"' in page and 'class="tl-online"' in page and "agent.started" in page
    assert "title of remote_tool_anydesk" in page and "AnyDesk.exe" in page
    assert re.search(r"<td>S2001</td><td>1</td>", page)
    assert re.search(r"<td>S2002</td><td>1</td><td class=\"mono\">cdcdcdcdcdcd</td>", page)


def test_alert_queue_filters_by_state_category_severity_and_outlet(console: ConsoleHq) -> None:
    a = console.hq.device("outlet-a")
    b = console.hq.device("outlet-b")
    a.send_events([finding("r-auto", "automation", "high"), finding("r-export", "export", "low"),
                   Event("alert.answered", {"alert_id": "x"}), Event("agent.started", {})])
    b.send_events([finding("r-tunnel", "tunnel", "critical")])
    with console.state.sessions.begin() as session:
        record_hq_event(session, device_id=a.device_id, kind="alert.sharing.two_pcs", now=time.time(),
                        body={"rule": "two_pcs", "staff_id": "S1", "outlet_id": "outlet-a"})
    viewer = console.browser("viewer")

    def titles(query: str) -> list[str]:
        page = viewer.get(f"/console/alerts?{query}").text
        return re.findall(r'<a href="/console/alerts/\d+">([^<]+)</a>', page)

    assert titles("") == ["credential sharing: two pcs", "title of r-tunnel", "title of r-export", "title of r-auto"]
    assert titles("category=export") == ["title of r-export"]
    assert titles("category=sharing") == ["credential sharing: two pcs"]
    assert titles("min_priority=3") == ["title of r-tunnel"]
    assert titles("outlet=outlet-b") == ["title of r-tunnel"]
    assert titles("state=resolved") == []
    assert viewer.get("/console/alerts?category=nonsense").status_code == 400


def triage(browser: Browser, pk: int, action: str, note: str = "") -> int:
    return browser.post(f"/console/alerts/{pk}/triage", {"action": action, "note": note,
                                                         "back": "/console/alerts"}).status_code


def test_triage_moves_an_alert_and_the_audit_log_says_who(console: ConsoleHq) -> None:
    device = console.hq.device()
    device.send_events([finding("r1", "automation"), finding("r2", "scripting")])
    analyst = console.browser("analyst")
    first, second = pks(analyst.get("/console/alerts").text)
    assert triage(analyst, first, "acknowledge", "looking into it") == 303
    assert triage(analyst, second, "resolve") == 303
    assert pks(analyst.get("/console/alerts").text) == []
    acknowledged = analyst.get("/console/alerts?state=acknowledged").text
    assert pks(acknowledged) == [first] and "anton: looking into it" in acknowledged
    assert triage(analyst, second, "reopen") == 303
    assert pks(analyst.get("/console/alerts").text) == [second]
    assert triage(analyst, first, "explode") == 400
    assert triage(analyst, 999_999, "resolve") == 404
    with console.state.sessions() as session:
        done = [(a.action, a.target, a.detail) for a in list_actions(session, analyst_id="anton")][::-1]
    assert done[1:] == [("alert.acknowledge", str(first), "open -> acknowledged: looking into it"),
                        ("alert.resolve", str(second), "open -> resolved"),
                        ("alert.reopen", str(second), "resolved -> open")]
    assert "alert.acknowledge" in analyst.get("/console/audit").text


def test_live_rows_bring_only_alerts_that_arrived_since(console: ConsoleHq) -> None:
    device = console.hq.device()
    device.send_events([finding("old", "automation")])
    viewer = console.browser("viewer")
    page = viewer.get("/console/alerts").text
    last = int(re.search(r'data-last="(\d+)"', page).group(1))  # type: ignore[union-attr]
    empty = viewer.get(f"/console/alerts/rows?after={last}&state=open").json()
    assert empty["count"] == 0 and empty["last"] == last
    device.send_events([finding("new-one", "export"), Event("agent.stopped", {})])
    fresh = viewer.get(f"/console/alerts/rows?after={last}&state=open").json()
    assert fresh["count"] == 1 and "title of new-one" in fresh["html"] and "title of old" not in fresh["html"]
    assert fresh["last"] > last
    assert viewer.get("/console/live").json()["open"] == 2


def test_revoking_from_the_console_refuses_the_pc_at_once(console: ConsoleHq) -> None:
    device = console.hq.device()
    assert device.heartbeat().status_code == 200
    analyst = console.browser("analyst")
    response = analyst.post(f"/console/devices/{device.device_id}/revoke", {"reason": "remote-control tool"})
    assert response.status_code == 303
    refused = device.heartbeat()
    assert (refused.status_code, refused.json()["error"]) == (401, "device_revoked")
    page = analyst.get(f"/console/devices/{device.device_id}").text
    assert 'id="device-status">revoked<' in page and "remote-control tool" in page
    assert console.hq.devices()[device.device_id]["status"] == "revoked"
    kinds = [e["kind"] for e in console.hq.events(device_id=device.device_id)]
    assert "device.revoked" in kinds
    assert analyst.post("/console/devices/no-such-pc/revoke", {}).status_code == 404


def test_policy_upload_is_validated_signed_and_served(console: ConsoleHq) -> None:
    admin = console.browser("admin")
    bad_json = admin.post("/console/policies", {"body": '{"protected_hosts": ['})
    assert bad_json.status_code == 422 and "not valid JSON" in bad_json.text and "line 1" in bad_json.text
    bad_field = admin.post("/console/policies", {"body": '{"thresholds": {"export_critical": "many"}}'})
    assert bad_field.status_code == 422 and "thresholds.export_critical" in bad_field.text
    assert console.state.policies.current.version == 1
    body = {"protected_hosts": ["waybill.example"], "thresholds": {"export_critical": 500}}
    published = admin.post("/console/policies", {"body": json.dumps(body)})
    assert published.status_code == 303 and published.headers["location"] == "/console/policies?version=2"
    device = console.hq.device()
    served = device.policy().json()
    policy = parse_policy(served["policy"], served["signature"], device.policy_public_key)
    assert policy.version == 2 and policy.body.protected_hosts == ("waybill.example",)
    assert "waybill.example" in admin.get("/console/policies?version=2").text
    uploaded = admin.client.post("/console/policies", data={"csrf": admin.csrf},
                                 files={"file": ("p.json", b'{"rules": []}', "application/json")},
                                 follow_redirects=False)
    assert uploaded.status_code == 303 and console.state.policies.current.version == 3
    assert admin.get("/console/policies?version=99").status_code == 404


def sharing_alert(console: ConsoleHq, device_id: str, rule: str, staff: str, origin_hq: bool = True) -> None:
    with console.state.sessions.begin() as session:
        if origin_hq:
            record_hq_event(session, device_id=device_id, kind=f"alert.sharing.{rule}", now=time.time(),
                            body={"rule": rule, "staff_id": staff, "outlet_id": "outlet-a",
                                  "evidence": {"other_device": "pc-x"}})
    assert ORIGIN_HQ == "hq"


def test_sharing_cases_group_hq_alerts_by_staff_and_ignore_forged_ones(console: ConsoleHq) -> None:
    device = console.hq.device("outlet-a")
    sharing_alert(console, device.device_id, "two_pcs", "S1001")
    sharing_alert(console, device.device_id, "token_elsewhere", "S1001")
    sharing_alert(console, "-", "other_outlet_queries", "S2002")
    # A PC cannot open a case by sending an event of an HQ kind.
    device.send_events([Event("alert.sharing.two_pcs", {"staff_id": "S3003"}, priority=3)])
    viewer = console.browser("viewer")
    page = viewer.get("/console/sharing").text
    assert "S1001" in page and "S2002" in page and "S3003" not in page
    assert "other_outlet_queries" in page and "token_elsewhere, two_pcs" in page
    case = viewer.get("/console/sharing/S1001").text
    assert case.count('data-pk="') == 2 and "pc-x" in case
    assert viewer.get("/console/sharing/S3003").status_code == 404
    queue = viewer.get("/console/alerts?category=sharing").text
    assert "from PC" in queue  # the forged one is in the queue, marked as reported by the PC


def add_staff_member(console: ConsoleHq, staff_id: str) -> None:
    from hq.staff.passwords import hash_password
    from hq.staff.store import add_staff

    with console.state.sessions.begin() as session:
        add_staff(session, staff_id=staff_id, outlet_id="outlet-a", name="Test Staff",
                  password_hash=hash_password("staff-password-1"), now=time.time())


def test_an_analyst_suspends_and_clears_a_staff_member_from_the_case(console: ConsoleHq) -> None:
    add_staff_member(console, "S1001")
    device = console.hq.device("outlet-a")
    sharing_alert(console, device.device_id, "two_pcs", "S1001")
    analyst = console.browser("analyst")
    case = analyst.get("/console/sharing/S1001").text
    assert "Suspend staff" in case
    done = analyst.post("/console/staff/S1001/suspend", {"reason": "rented account", "back": "/console/sharing/S1001"})
    assert done.status_code == 303 and done.headers["location"] == "/console/sharing/S1001"
    case = analyst.get("/console/sharing/S1001").text
    assert 'id="suspended"' in case and "Clear suspension" in case
    assert 'class="pill revoked">suspended<' in analyst.get("/console/sharing").text
    from hq.staff.store import get_staff

    with console.state.sessions() as session:
        member = get_staff(session, staff_id="S1001")
        assert member is not None and member.suspended_at is not None and member.suspended_reason == "rented account"
    assert analyst.post("/console/staff/S1001/clear", {"back": "/console/sharing/S1001"}).status_code == 303
    assert 'id="suspended"' not in analyst.get("/console/sharing/S1001").text
    assert analyst.post("/console/staff/NOBODY/suspend", {}).status_code == 404
    trail = [(r["action"], r["detail"]) for r in console.hq.audit()]
    assert ("staff_suspend", "staff S1001 by analyst anton") in trail
    assert ("staff_clear", "staff S1001 by analyst anton") in trail
    with console.state.sessions() as session:
        done_actions = [a.action for a in list_actions(session, analyst_id="anton")]
    assert "staff.suspend" in done_actions and "staff.clear" in done_actions


def test_acknowledgement_register_lists_who_acknowledged_and_who_has_not(console: ConsoleHq) -> None:
    from hq.binding.models import PolicyAcknowledgement

    first = console.hq.device("outlet-a", hostname="pc-1")
    second = console.hq.device("outlet-a", hostname="pc-2")
    assert first.heartbeat(staff="S1", hostname="pc-1").status_code == 200
    assert second.heartbeat(staff="S2", hostname="pc-2").status_code == 200
    console.state.flush()
    now = time.time()
    with console.state.sessions.begin() as session:
        session.add(PolicyAcknowledgement(staff_id="S1", policy_hash="ab" * 32, policy_version=1,
                                          device_id=first.device_id, outlet_id="outlet-a", acknowledged_at=now,
                                          received_at=now, document="{}", signature="sig"))
    page = console.browser("viewer").get("/console/acknowledgements").text
    acks = page.split('id="acks"')[1].split("</table>")[0]
    missing = page.split('id="missing"')[1].split("</table>")[0]
    assert "S1" in acks and "pc-1" in acks and "abababababab" in acks and "S2" not in acks
    assert "S2" in missing and "S1" not in missing
