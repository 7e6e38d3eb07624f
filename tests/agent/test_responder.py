"""The responder: actions from policy per rule, repeats folded with a count, staff answers kept private."""

from __future__ import annotations

import time
from pathlib import Path

from agent.alerts import AlertBook
from agent.detection.actions import parse_responses
from agent.detection.dedupe import Dedupe
from agent.detection.respond import Responder
from agent.detection.terminate import Termination
from agent.events import Event
from agent.findings import Finding
from agent.spool import Spool
from tests.agent.test_redact import mobile


def finding(rule: str, severity: str = "high", pid: int = 4321) -> Finding:
    return Finding(rule, "t", severity, "automation",
                   {"process.pid": pid, "process.start": 1_800_000_000.5, "process.name": "chromedriver"})


def setup(tmp_path: Path, responses: dict) -> tuple[Responder, Spool, AlertBook, list[tuple[int, float | None]]]:
    spool = Spool(tmp_path / "spool.sqlite3")
    book = AlertBook(tmp_path, spool.put)
    killed: list[tuple[int, float | None]] = []

    def terminate(pid: int, started: float | None) -> Termination:
        killed.append((pid, started))
        return Termination("terminated", (pid,))

    policy = parse_responses(responses)
    return Responder(spool, book, Dedupe(), responses=lambda: policy, terminate=terminate), spool, book, killed


def wait_for(predicate, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not predicate() and time.monotonic() < end:
        time.sleep(0.01)


def test_each_rule_gets_the_actions_policy_names(tmp_path: Path) -> None:
    respond, spool, book, killed = setup(tmp_path, {"rules": {"quiet": "alert", "loud": "notify"}})
    respond(finding("quiet"))
    respond(finding("loud", severity="low"))
    respond(finding("unnamed", severity="critical"))
    bodies = {e.body["rule"]: e.body for e in spool.peek(10)}
    assert bodies["quiet"]["response.actions"] == ["alert"]
    assert bodies["loud"]["response.actions"] == ["alert", "notify"]
    assert bodies["unnamed"]["response.actions"] == ["alert", "require_ack"]
    listing = book.listing()
    assert [a["rule"] for a in listing["pending"]] == ["unnamed"]
    assert [(a["rule"], a["state"]) for a in listing["past"]] == [("loud", "notified")]
    assert killed == []


def test_terminate_only_when_policy_allows_it_and_the_outcome_is_reported(tmp_path: Path) -> None:
    respond, spool, _, killed = setup(tmp_path, {"rules": {"r": "terminate"}})
    respond(finding("r"))
    assert killed == []
    respond, spool, _, killed = setup(tmp_path / "2", {"allow_terminate": True, "rules": {"r": "terminate"}})
    respond(finding("r"))
    wait_for(lambda: any(e.kind == "response.terminated" for e in spool.peek(10)))
    assert killed == [(4321, 1_800_000_000.5)]
    [outcome] = [e.body for e in spool.peek(10) if e.kind == "response.terminated"]
    assert outcome["outcome"] == "terminated" and outcome["pids"] == [4321]


def test_repeats_fold_into_one_alert_and_are_still_terminated(tmp_path: Path) -> None:
    respond, spool, book, killed = setup(tmp_path, {"allow_terminate": True,
                                                    "rules": {"r": ["terminate", "require_ack"]}})
    for pid in (1, 2, 3):
        respond(finding("r", pid=pid))
    wait_for(lambda: len(killed) == 3)
    assert sorted(pid for pid, _ in killed) == [1, 2, 3]
    [alert] = book.listing()["pending"]
    assert alert["repeats"] == 2
    assert [e.kind for e in spool.peek(10)].count("finding") == 1
    time.sleep(0.2)
    assert [e.kind for e in spool.peek(10)].count("response.terminated") == 1, "folded repeats are only logged"


def test_a_phone_number_in_a_staff_explanation_does_not_reach_hq(tmp_path: Path) -> None:
    import random

    number = mobile(random.Random(5))
    events: list[Event] = []
    book = AlertBook(tmp_path, events.append)
    alert = book.add(finding("r"), "require_ack")
    book.answer(alert["alert_id"], "explain", f"the customer {number} asked me to look up a parcel", staff="S1")
    assert number not in str(events[0].body) and "<phone>" in events[0].body["justification"]
    assert number not in (tmp_path / "alerts.json").read_text("utf-8")
