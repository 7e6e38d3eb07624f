"""The local channel's handlers: the tray is shown and may answer only the signed-in staff's alerts
(and those raised while nobody was signed in), and learns why the last session ended."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from agent.alerts import AlertBook
from agent.binding.manager import BindingManager
from agent.channel_handlers import ChannelHandlers
from agent.events import Event
from agent.findings import Finding
from agent.localchannel import ops
from agent.localchannel.protocol import ChannelError
from agent.policy import CurrentPolicy
from agent.spool import Spool
from agent.status_file import StatusFile

JUSTIFICATION = "The label printer vendor's support session"


class Binding:
    """The parts of BindingManager the handlers read, set by the test."""

    def __init__(self) -> None:
        self.signed_in: str | None = None
        self.ended: ops.LastSignout | None = None

    def staff(self) -> str | None:
        return self.signed_in

    def attention(self) -> list[str]:
        return []

    def last_signout(self) -> ops.LastSignout | None:
        return self.ended


class Agent:
    def __init__(self, tmp_path: Path) -> None:
        self.binding = Binding()
        self.events: list[Event] = []
        self.spool = Spool(tmp_path / "spool.sqlite3")
        self.book = AlertBook(tmp_path, self.events.append, staff=self.binding.staff)
        self.handlers = ChannelHandlers(state_dir=tmp_path, status=StatusFile(tmp_path), spool=self.spool,
                                        policy=CurrentPolicy(None), alerts=self.book, staff=lambda: None,
                                        binding=cast(BindingManager, self.binding)).table()

    def raise_alert(self, n: int, *, under: str | None) -> str:
        self.binding.signed_in = under
        finding = Finding(f"rule-{n}", "Remote-control tool started", "high", "remote_access",
                          {"process.name": "anydesk.exe"}, observed_at=1_800_000_000.0 + n)
        return self.book.add(finding, "require_ack")["alert_id"]

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        return self.handlers[op](args)

    def as_staff(self, staff: str | None) -> Agent:
        self.binding.signed_in = staff
        return self


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    made = Agent(tmp_path)
    yield made
    made.spool.close()


def pending_ids(agent: Agent) -> list[str]:
    return [a["alert_id"] for a in agent.call(ops.OP_ALERTS)["pending"]]


def test_the_tray_lists_and_counts_only_what_the_signed_in_staff_must_answer(agent: Agent) -> None:
    s1 = agent.raise_alert(1, under="S1")
    nobody = agent.raise_alert(2, under=None)
    assert pending_ids(agent.as_staff("S1")) == [s1, nobody]
    assert ops.ATTN_ALERTS_PENDING in agent.call(ops.OP_STATUS)["attention"]
    assert pending_ids(agent.as_staff("S2")) == [nobody]
    assert pending_ids(agent.as_staff(None)) == [nobody]

    agent.as_staff("S2").call(ops.OP_ANSWER_ALERT, alert_id=nobody, action="explain", justification=JUSTIFICATION)
    assert ops.ATTN_ALERTS_PENDING not in agent.call(ops.OP_STATUS)["attention"], "S1's alert is not S2's"
    assert ops.ATTN_ALERTS_PENDING not in agent.as_staff(None).call(ops.OP_STATUS)["attention"], (
        "with nobody signed in, only unattributed alerts count")
    assert ops.ATTN_ALERTS_PENDING in agent.as_staff("S1").call(ops.OP_STATUS)["attention"]


def test_answering_a_colleagues_alert_is_refused_with_staff_mismatch(agent: Agent) -> None:
    s1 = agent.raise_alert(1, under="S1")
    with pytest.raises(ChannelError) as refused:
        agent.as_staff("S2").call(ops.OP_ANSWER_ALERT, alert_id=s1, action="explain", justification=JUSTIFICATION)
    assert refused.value.code == ops.ERR_STAFF_MISMATCH
    with pytest.raises(ChannelError) as nobody:
        agent.as_staff(None).call(ops.OP_ANSWER_ALERT, alert_id=s1, action="explain", justification=JUSTIFICATION)
    assert nobody.value.code == ops.ERR_NOT_SIGNED_IN
    assert agent.events == []
    answered = agent.as_staff("S1").call(ops.OP_ANSWER_ALERT, alert_id=s1, action="explain",
                                         justification=JUSTIFICATION)
    assert answered["state"] == "explained"
    [event] = agent.events
    assert (event.body["alert_staff"], event.body["staff"]) == ("S1", "S1")


def test_status_says_why_the_last_session_ended(agent: Agent) -> None:
    assert agent.call(ops.OP_STATUS)["last_signout"] is None
    agent.binding.ended = {"reason": ops.SIGNOUT_SCREEN_LOCKED, "at": 1_800_000_000.0, "staff": "S1"}
    status = agent.call(ops.OP_STATUS)
    assert status["staff"] is None
    assert status["last_signout"] == {"reason": "screen_locked", "at": 1_800_000_000.0, "staff": "S1"}
