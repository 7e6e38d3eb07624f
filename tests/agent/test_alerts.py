"""The alert book: alerts live in memory first; the file only carries them across restarts; each
alert belongs to the staff signed in when it was raised."""

from __future__ import annotations

import errno
import json
import logging
import os
from pathlib import Path
from unittest import mock

import pytest

from agent.alerts import AlertBook, AlertError
from agent.events import Event
from agent.findings import Finding
from agent.localchannel import ops


def finding(n: int) -> Finding:
    return Finding(f"rule-{n}", f"Title {n}", "high", "automation", {"process.name": "chromedriver"},
                   observed_at=1_800_000_000.0 + n)


def full_disk_write_text(self: Path, *args: object, **kwargs: object) -> None:
    """Like a real full disk: the temporary file gets created, then the write fails."""
    self.touch()
    raise OSError(errno.ENOSPC, "No space left on device", str(self))


def test_alerts_made_on_a_full_disk_are_shown_and_saved_by_the_next_change_that_fits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[Event] = []
    book = AlertBook(tmp_path, events.append)

    with caplog.at_level(logging.WARNING, logger="agent.alerts"), \
            mock.patch.object(Path, "write_text", full_disk_write_text):
        first = book.add(finding(1), "require_ack")
        second = book.add(finding(2), "require_ack")
        assert first is not None and second is not None
        book.answer(first["alert_id"], "acknowledge", "I started it for the price check", staff="S1")

    assert [a["rule"] for a in book.listing()["pending"]] == ["rule-2"]
    assert [e.kind for e in events] == ["alert.answered"], "the answer still goes to HQ"
    assert os.listdir(tmp_path) == [], "no temporary file is left behind"
    assert len([r for r in caplog.records if "No space left" in r.getMessage()]) == 1, "one warning per streak"

    book.add(finding(3), "require_ack")
    reloaded = AlertBook(tmp_path, events.append)
    assert [a["rule"] for a in reloaded.listing()["pending"]] == ["rule-2", "rule-3"]
    assert [a["rule"] for a in reloaded.listing()["past"]] == ["rule-1"]


class SignedIn:
    """Who the binding manager says is signed in, set by the test."""

    def __init__(self) -> None:
        self.staff: str | None = None

    def __call__(self) -> str | None:
        return self.staff


def book_with_three_alerts(tmp_path: Path, events: list[Event]) -> tuple[AlertBook, dict[str, str]]:
    """S1's, S2's and one raised while nobody was signed in; the ids by their owner."""
    signed_in = SignedIn()
    book = AlertBook(tmp_path, events.append, staff=signed_in)
    ids = {}
    for n, staff in enumerate(["S1", None, "S2"]):
        signed_in.staff = staff
        ids[str(staff)] = book.add(finding(n), "require_ack")["alert_id"]
    signed_in.staff = "S2"
    return book, ids


def test_each_staff_sees_their_own_alerts_and_those_raised_while_nobody_was_signed_in(tmp_path: Path) -> None:
    book, ids = book_with_three_alerts(tmp_path, [])
    assert {a["alert_id"]: a["staff"] for a in book.listing("S1")["pending"]} == {ids["S1"]: "S1", ids["None"]: None}
    assert [a["alert_id"] for a in book.listing("S2")["pending"]] == [ids["None"], ids["S2"]]
    assert [a["alert_id"] for a in book.listing(None)["pending"]] == [ids["None"]], "nobody signed in"
    assert [book.pending_count(s) for s in ("S1", "S2", "S3", None)] == [2, 2, 1, 1]


def test_a_colleagues_alert_is_neither_shown_nor_answerable_even_once_answered(tmp_path: Path) -> None:
    events: list[Event] = []
    book, ids = book_with_three_alerts(tmp_path, events)
    with pytest.raises(AlertError) as other:
        book.answer(ids["S1"], "explain", "It was not me, I only just sat down", staff="S2")
    assert other.value.code == ops.ERR_STAFF_MISMATCH
    with pytest.raises(AlertError) as nobody:
        book.answer(ids["None"], "acknowledge", "someone must have started it", staff=None)
    assert nobody.value.code == ops.ERR_NOT_SIGNED_IN
    assert events == [] and book.pending_count("S1") == 2

    book.answer(ids["S1"], "explain", "The printer vendor's support session", staff="S1")
    assert ids["S1"] not in {a["alert_id"] for a in book.listing("S2")["past"]}, "S1's answer stays S1's"
    assert [a["alert_id"] for a in book.listing("S1")["past"]] == [ids["S1"]]


def test_the_answer_event_names_who_was_signed_in_at_the_finding_and_who_answered(tmp_path: Path) -> None:
    events: list[Event] = []
    book, ids = book_with_three_alerts(tmp_path, events)
    book.answer(ids["None"], "acknowledge", "I started it for the price check", staff="S2")
    book.answer(ids["S2"], "acknowledge", "I started it for the price check", staff="S2")
    assert [(e.kind, e.body["alert_staff"], e.body["staff"]) for e in events] == [
        ("alert.answered", None, "S2"), ("alert.answered", "S2", "S2")]


def test_alerts_saved_by_the_previous_version_load_as_unattributed(tmp_path: Path) -> None:
    old = {"alert_id": "a-old", "rule": "r", "title": "t", "severity": "high", "category": "automation",
           "created": 1_800_000_000.0, "process_name": "chromedriver", "rows": None, "action": "require_ack",
           "state": "pending", "answered_at": None, "justification": None}  # neither staff nor repeats
    (tmp_path / "alerts.json").write_text(json.dumps([old]), "utf-8")
    events: list[Event] = []
    book = AlertBook(tmp_path, events.append, staff=lambda: "S1")
    assert [a["alert_id"] for a in book.listing("S1")["pending"]] == ["a-old"]
    assert book.pending_count(None) == 1
    book.fold(Finding("r", "t", "high", "automation", {"process.name": "chromedriver"}))
    # The tool ran again under S1: S1 answers for that, not for whatever happened before.
    assert [(a["alert_id"] == "a-old", a.get("staff")) for a in book.listing("S1")["pending"]] == [
        (True, None), (False, "S1")]
    book.answer("a-old", "acknowledge", "I started it for the price check", staff="S1")
    assert events[0].body["alert_staff"] is None and events[0].body["staff"] == "S1"


def test_repeats_fold_into_the_same_staffs_alert_and_make_a_new_one_for_the_next_staff(tmp_path: Path) -> None:
    signed_in = SignedIn()
    book = AlertBook(tmp_path, lambda event: None, staff=signed_in)
    signed_in.staff = "S1"
    first = book.add(finding(1), "require_ack")
    book.fold(finding(1))
    signed_in.staff = "S2"
    book.fold(finding(1))
    book.fold(finding(1))
    [s1] = book.listing("S1")["pending"]
    [s2] = book.listing("S2")["pending"]
    assert s1["alert_id"] == first["alert_id"] and s1["repeats"] == 1
    assert s2["staff"] == "S2" and s2["repeats"] == 1 and s2["action"] == "require_ack"
    reloaded = AlertBook(tmp_path, lambda event: None)
    assert [a["staff"] for a in reloaded.listing("S2")["pending"]] == ["S2"], "kept across restarts"
