"""Sharing detection inside a running HQ: facts from verify, sign-ins, heartbeats, findings and
gateway reports become alert.sharing.* events, and a `suspend` policy denies at once."""

from __future__ import annotations

import time
from typing import Any

from agent.events import Event
from hq.store.policies import publish_policy
from tests.hq.binding.binding_client import URL, Bound, add_staff_member, flush, gateway_key, verify
from tests.hq.conftest import Hq


def publish(hq: Hq, body: dict[str, Any]) -> None:
    with hq.state.sessions.begin() as session:
        publish_policy(session, body=body, key=hq.state.policy_key, now=time.time())
    hq.state.policies.refresh()


def alerts(hq: Hq, rule: str) -> list[dict[str, Any]]:
    flush(hq)
    return [e for e in hq.events() if e["kind"] == f"alert.sharing.{rule}"]


def allowed(hq: Hq, key: str, bound: Bound, token: str, **extra: Any) -> dict[str, Any]:
    answer = verify(hq, key, session=token, proof=bound.proof(token), **extra)
    assert answer["decision"] == "allow", answer
    return answer


def test_the_same_staff_on_two_pcs_within_the_window(hq: Hq) -> None:
    add_staff_member(hq, "S001")
    key = gateway_key(hq)
    first, second = Bound(hq.device("o1"), "S001"), Bound(hq.device("o1"), "S001")
    first.device.heartbeat(remote_sessions=[])
    second.device.heartbeat(remote_sessions=[])
    token_a = first.token()
    allowed(hq, key, first, token_a)
    token_b = second.token()
    allowed(hq, key, second, token_b)
    [alert] = alerts(hq, "two_devices")
    assert alert["body"]["evidence"]["devices"] == sorted([first.device.device_id, second.device.device_id])


def test_activity_while_the_bound_pc_is_silent(hq: Hq) -> None:
    add_staff_member(hq, "S001")
    key = gateway_key(hq)
    bound = Bound(hq.device("o1"), "S001")
    token = bound.token()
    allowed(hq, key, bound, token)
    [alert] = alerts(hq, "no_heartbeat")
    assert alert["device_id"] == bound.device.device_id and alert["body"]["evidence"]["last_heartbeat"] is None
    bound.device.heartbeat(remote_sessions=[])
    allowed(hq, key, bound, token)
    assert len(alerts(hq, "no_heartbeat")) == 1


def test_an_inbound_remote_session_or_a_remote_tool_while_signed_in(hq: Hq) -> None:
    add_staff_member(hq, "S001")
    bound = Bound(hq.device("o1"), "S001")
    bound.device.heartbeat(remote_sessions=[{"user": "staff01", "host": "198.51.100.7", "terminal": "rdp-tcp#1"}])
    bound.token()
    [alert] = alerts(hq, "remote_session")
    assert alert["body"]["evidence"]["remote_hosts"] == ["198.51.100.7"]
    finding = Event("finding", {"rule": "remote_control_tool", "title": "t", "severity": "high",
                                "category": "remote_access", "process.name": "ToDesk.exe"})
    assert bound.device.send_events([finding]).status_code == 200
    tools = [a for a in alerts(hq, "remote_session") if "tool" in a["body"]["evidence"]]
    assert tools and tools[0]["body"]["evidence"]["tool"] == "ToDesk.exe"


def test_more_accounts_on_one_pc_than_policy_allows(hq: Hq) -> None:
    publish(hq, {"sharing": {"max_accounts_per_device_hour": 2}})
    device = hq.device("o1")
    for staff in ("S1", "S2", "S3"):
        add_staff_member(hq, staff)
        Bound(device, staff).token()
    [alert] = alerts(hq, "many_accounts")
    assert alert["body"]["evidence"]["accounts"] == ["S1", "S2", "S3"]


def test_off_hours_use_per_outlet_schedule(hq: Hq) -> None:
    now = time.gmtime()
    closed_start = f"{(now.tm_hour + 2) % 24:02d}:00"
    closed_end = f"{(now.tm_hour + 3) % 24:02d}:00"
    publish(hq, {"binding": {"hours": {"outlets": {"o1": {"start": closed_start, "end": closed_end,
                                                          "utc_offset_minutes": 0}}}}})
    add_staff_member(hq, "S001")
    key = gateway_key(hq)
    bound = Bound(hq.device("o1"), "S001")
    bound.device.heartbeat(remote_sessions=[])
    token = bound.token()
    allowed(hq, key, bound, token)
    [alert] = alerts(hq, "off_hours")
    assert alert["body"]["outlet_id"] == "o1"


def test_a_rented_account_is_suspended_and_denied_at_once(hq: Hq) -> None:
    publish(hq, {"sharing": {"other_outlet": {"learning_queries": 100, "learning_period_s": 0, "min_queries": 50},
                             "responses": {"other_outlet": "suspend"}}})
    add_staff_member(hq, "S001")
    key = gateway_key(hq)
    bound = Bound(hq.device("o1"), "S001")
    bound.device.heartbeat(remote_sessions=[])
    token = bound.token()
    for n in range(100):  # a normal baseline: 3 % other-outlet waybills
        allowed(hq, key, bound, token, outlet="o1", waybill_outlet="o2" if n % 33 == 0 else "o1")
    reports = [{"staff": "S001", "device": bound.device.device_id, "outlet": "o1", "waybill_outlet": "o2"}] * 60
    answer = hq.client.post("/v1/activity", json={"queries": reports}, headers={"X-TG-Gateway-Key": key})
    assert answer.status_code == 200 and answer.json()["accepted"] == 60
    denied = verify(hq, key, session=token, proof=bound.proof(token), outlet="o1")
    assert denied["reason"] == "staff_suspended"
    [alert] = alerts(hq, "other_outlet")
    assert alert["body"]["response"] == "suspend" and alert["priority"] == 3
    assert alert["body"]["evidence"]["baseline_share"] < 0.05
    kinds = [e["kind"] for e in hq.events()]
    assert "staff.suspended" in kinds
    audit = [a for a in hq.audit() if a["action"] == "sharing_alert" and a["reason"] == "other_outlet"]
    assert audit and audit[0]["outcome"] == "suspend"
    from hq.staff import commands

    commands.staff_clear(hq.state.sessions, staff_id="S001")
    hq.client.app.state.binding.directory.poll()  # type: ignore[attr-defined]
    assert verify(hq, key, session=token, proof=bound.proof(token), outlet="o1")["decision"] == "allow"


def test_a_normal_day_raises_no_alert_and_denies_nothing(hq: Hq) -> None:
    publish(hq, {"sharing": {"other_outlet": {"learning_queries": 50, "learning_period_s": 0},
                             "responses": {rule: "suspend" for rule in ("other_outlet", "two_devices")}}})
    add_staff_member(hq, "S001")
    key = gateway_key(hq)
    bound = Bound(hq.device("o1"), "S001")
    bound.device.heartbeat(remote_sessions=[])
    token = bound.token()
    for n in range(300):
        url = URL.replace("0001", f"{n:04d}")
        answer = verify(hq, key, session=token, proof=bound.proof(token, url=url), url=url, outlet="o1",
                        waybill_outlet="o2" if n % 25 == 0 else "o1")
        assert answer["decision"] == "allow", (n, answer)
    flush(hq)
    assert not [e for e in hq.events() if e["kind"].startswith("alert.sharing.")]


def test_a_finding_whose_policy_response_is_suspend_binding_suspends_the_signed_in_staff(hq: Hq) -> None:
    publish(hq, {"responses": {"rules": {"tg.interception.*": ["require_ack", "suspend_binding"]}}})
    add_staff_member(hq, "S001")
    key = gateway_key(hq)
    bound = Bound(hq.device("o1"), "S001")
    bound.device.heartbeat(remote_sessions=[])
    token = bound.token()
    allowed(hq, key, bound, token)
    benign = Event("finding", {"rule": "tg.automation.headless", "title": "t", "severity": "high",
                               "category": "automation"})
    assert bound.device.send_events([benign]).status_code == 200
    allowed(hq, key, bound, token)  # a rule policy does not name: no suspension
    # The device's own claim about responses is ignored: HQ's policy decides.
    claimed = Event("finding", {"rule": "tg.automation.headless", "title": "t", "severity": "high",
                                "category": "automation", "response.actions": ["alert", "suspend_binding"]})
    assert bound.device.send_events([claimed]).status_code == 200
    allowed(hq, key, bound, token)
    finding = Event("finding", {"rule": "tg.interception.mitmproxy", "title": "t", "severity": "high",
                                "category": "interception", "process.name": "mitmdump"})
    assert bound.device.send_events([finding]).status_code == 200
    assert verify(hq, key, session=token, proof=bound.proof(token))["reason"] == "staff_suspended"
    [alert] = alerts(hq, "device_finding")
    assert alert["body"]["response"] == "suspend" and alert["body"]["staff_id"] == "S001"
    assert alert["body"]["evidence"] == {"finding_rule": "tg.interception.mitmproxy", "category": "interception"}
    assert "staff.suspended" in [e["kind"] for e in hq.events()]


def test_a_suspend_binding_finding_with_nobody_signed_in_suspends_nobody(hq: Hq) -> None:
    publish(hq, {"responses": {"rules": {"tg.interception.mitmproxy": "suspend_binding"}}})
    device = hq.device("o1")
    finding = Event("finding", {"rule": "tg.interception.mitmproxy", "title": "t", "severity": "high",
                                "category": "interception"})
    assert device.send_events([finding]).status_code == 200
    assert alerts(hq, "device_finding") == []
