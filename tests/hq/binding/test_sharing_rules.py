"""Each credential-sharing rule on its own: facts in, an alert with evidence (or nothing) out."""

from __future__ import annotations

import datetime as dt

from agent.binding.policy import Hours, OtherOutletPolicy
from hq.sharing import rules

NOW = dt.datetime(2026, 3, 4, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()  # a Wednesday


def test_unbound_use_needs_a_sharing_reason_and_someone_to_name() -> None:
    alert = rules.unbound_use(reason="wrong_device", staff="S1", device="A", outlet="o1", at=NOW,
                              presenting_device="B")
    assert alert is not None and alert.evidence == {"reason": "wrong_device", "bound_device": "A",
                                                    "presenting_device": "B"}
    assert rules.unbound_use(reason="replayed_proof", staff="S1", device="A", outlet="o1", at=NOW) is None
    assert rules.unbound_use(reason="missing_token", staff=None, device=None, outlet=None, at=NOW) is None
    assert rules.unbound_use(reason="missing_token", staff="S1", device=None, outlet=None, at=NOW) is not None


def test_two_devices_within_the_window() -> None:
    assert rules.two_devices(staff="S1", device="A", outlet="o1", at=NOW, last_seen={"A": NOW - 5},
                             window_s=600) is None
    assert rules.two_devices(staff="S1", device="A", outlet="o1", at=NOW, last_seen={"B": NOW - 601},
                             window_s=600) is None
    alert = rules.two_devices(staff="S1", device="A", outlet="o1", at=NOW, last_seen={"B": NOW - 60},
                              window_s=600)
    assert alert is not None and alert.evidence["devices"] == ["A", "B"]


def test_no_heartbeat_from_the_bound_pc() -> None:
    fresh = rules.no_heartbeat(staff="S1", device="A", outlet="o1", at=NOW, last_heartbeat=NOW - 30,
                               interval_s=10, grace_s=60)
    assert fresh is None
    stale = rules.no_heartbeat(staff="S1", device="A", outlet="o1", at=NOW, last_heartbeat=NOW - 71,
                               interval_s=10, grace_s=60)
    never = rules.no_heartbeat(staff="S1", device="A", outlet="o1", at=NOW, last_heartbeat=None,
                               interval_s=10, grace_s=60)
    assert stale is not None and never is not None


def test_remote_session_or_tool_while_signed_in() -> None:
    assert rules.remote_session(staff="S1", device="A", outlet="o1", at=NOW) is None
    alert = rules.remote_session(staff="S1", device="A", outlet="o1", at=NOW,
                                 sessions=[{"user": "u", "host": "203.0.113.9", "terminal": "rdp"}])
    assert alert is not None and alert.evidence == {"remote_sessions": 1, "remote_hosts": ["203.0.113.9"]}
    tool = rules.remote_session(staff="S1", device="A", outlet="o1", at=NOW, tool="anydesk.exe")
    assert tool is not None and tool.evidence == {"tool": "anydesk.exe"}


def test_many_accounts_on_one_pc_in_an_hour() -> None:
    signins = [("S1", NOW - 3000), ("S2", NOW - 2000), ("S3", NOW - 1000), ("S1", NOW - 10)]
    assert rules.many_accounts(device="A", outlet="o1", at=NOW, signins=signins, limit=3) is None
    alert = rules.many_accounts(device="A", outlet="o1", at=NOW, signins=[*signins, ("S4", NOW)], limit=3)
    assert alert is not None and alert.evidence["accounts"] == ["S1", "S2", "S3", "S4"] and alert.staff is None
    old = [("S9", NOW - 3602), *signins, ("S4", NOW)]
    assert rules.many_accounts(device="A", outlet="o1", at=NOW - 1, signins=old[:-1], limit=3) is None


def test_off_hours_by_the_outlet_schedule() -> None:
    day = Hours(days=(1, 2, 3, 4, 5), start_min=8 * 60, end_min=20 * 60, utc_offset_min=480)
    assert rules.off_hours(staff="S1", device="A", outlet="o1", at=NOW, hours=day) is None
    assert rules.off_hours(staff="S1", device="A", outlet="o1", at=NOW + 11 * 3600, hours=day) is not None
    saturday = NOW + 3 * 86400
    assert rules.off_hours(staff="S1", device="A", outlet="o1", at=saturday, hours=day) is not None
    assert rules.off_hours(staff="S1", device="A", outlet="o1", at=saturday, hours=None) is None


def test_a_night_shift_runs_past_midnight() -> None:
    night = Hours(days=(3,), start_min=22 * 60, end_min=6 * 60, utc_offset_min=480)
    wednesday_23h = NOW + 12.5 * 3600
    thursday_5h = NOW + 18.5 * 3600
    thursday_23h = NOW + 36.5 * 3600
    assert night.is_open(wednesday_23h) and night.is_open(thursday_5h)
    assert not night.is_open(thursday_23h) and not night.is_open(NOW)


def test_other_outlet_share_above_the_learned_baseline() -> None:
    policy = OtherOutletPolicy(min_queries=50, multiplier=3.0, min_share=0.2)

    def judge(baseline: float | None, queries: int, other: int) -> rules.SharingAlert | None:
        return rules.other_outlet(staff="S1", device="A", outlet="o1", at=NOW, baseline_share=baseline,
                                  window_queries=queries, window_other=other, policy=policy)

    assert judge(None, 600, 500) is None  # still learning
    assert judge(0.05, 200, 49) is None  # too few to judge
    assert judge(0.05, 400, 60) is None  # 15 %: under the 20 % floor
    assert judge(0.10, 200, 55) is None  # 27.5 %: under 3 x 10 %
    alert = judge(0.05, 520, 500)
    assert alert is not None and alert.evidence["share"] > 0.9 and alert.evidence["threshold"] == 0.2
