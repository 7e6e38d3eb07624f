"""The agent's staff session against a real HQ: sign-in, acknowledgement, proofs, refresh and
every sign-out the policy asks for. Only the OS (idle time, sessions) is faked."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.binding.manager import BindingError, BindingManager, DeviceAccess
from agent.binding.proof import make_proof
from agent.events import Event
from agent.localchannel import ops
from agent.localchannel.default_policy import default_policy_text
from agent.platform.base import UserSession
from agent.platform.fake import FakePlatform
from agent.policy import CurrentPolicy, Policy, parse_policy_body
from tests.agent.binding.live_hq import PASSWORD, LiveHq, live_hq

URL = "https://waybill.example/outlets/o1/waybills/WB0000000001"


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class Agent:
    """A BindingManager wired as the service wires it, with what it emitted kept for the test."""

    def __init__(self, hq: LiveHq, tmp_path: Path, binding: dict[str, Any] | None = None) -> None:
        self.hq = hq
        self.client, self.key = hq.device("o1")
        self.access = DeviceAccess(client=self.client, key=self.key, outlet_id="o1")
        self.events: list[Event] = []
        self.changes: list[str | None] = []
        self.platform = FakePlatform(tmp_path)
        self.clock = Clock()
        body = parse_policy_body({"binding": binding or {}})
        self.policy = CurrentPolicy(None, Policy(version=1, issued_at="-", body=body, document={}, signature=""))
        self.manager = BindingManager(access=lambda: self.access, policy=self.policy,
                                      policy_text=lambda: {**default_policy_text(), "version": 1},
                                      put_event=self.events.append, on_change=self.changes.append,
                                      platform=self.platform, clock=self.clock)

    def kinds(self) -> list[str]:
        return [event.kind for event in self.events]

    def sign_in_and_acknowledge(self, staff: str = "S001") -> None:
        self.manager.signin(staff, PASSWORD)
        answer = self.manager.acknowledge(staff, default_policy_text()["hash"], staff)
        assert answer["queued"] is False


def verify(hq: LiveHq, key: str, headers: dict[str, str], url: str = URL) -> dict[str, Any]:
    body = {"method": "GET", "url": url, "session": headers.get("X-TG-Session"), "proof": headers.get("X-TG-Proof")}
    return dict(httpx.post(hq.url + "/v1/verify", json=body, headers={"X-TG-Gateway-Key": key}).json())


@pytest.fixture
def hq(tmp_path: Path) -> Iterator[LiveHq]:
    with live_hq(tmp_path / "hq") as server:
        server.staff("S001")
        server.staff("S002")
        yield server


def test_sign_in_then_acknowledge_then_proofs_that_hq_accepts(hq: LiveHq, tmp_path: Path) -> None:
    agent = Agent(hq, tmp_path)
    key = hq.gateway_key()
    assert agent.manager.signin("S001", PASSWORD) == {"staff": "S001"}
    assert agent.manager.staff() == "S001" and agent.changes == ["S001"]
    assert agent.manager.attention() == [ops.ATTN_POLICY_ACK_REQUIRED]
    with pytest.raises(BindingError) as refused:
        agent.manager.proof("GET", URL)
    assert refused.value.code == ops.ERR_POLICY_ACK_REQUIRED
    with pytest.raises(BindingError) as mismatch:
        agent.manager.acknowledge("S001", default_policy_text()["hash"], "S002")
    assert mismatch.value.code == ops.ERR_STAFF_MISMATCH
    with pytest.raises(BindingError) as changed:
        agent.manager.acknowledge("S001", "0" * 64, "S001")
    assert changed.value.code == ops.ERR_POLICY_CHANGED
    assert agent.manager.acknowledge("S001", default_policy_text()["hash"], " S001 ")["queued"] is False
    assert agent.manager.attention() == []
    proof = agent.manager.proof("GET", URL)
    assert proof["staff"] == "S001" and proof["expires_at"] > time.time() + 500
    assert verify(hq, key, proof["headers"])["decision"] == "allow"
    assert agent.kinds() == ["session.signed_in", "policy.acknowledged"]
    acknowledgement = agent.events[1].body
    assert acknowledgement["staff_id"] == "S001" and acknowledgement["acknowledgement"]["signature"]
    # The key never travels: nothing the manager emitted or answered carries it.
    from cryptography.hazmat.primitives import serialization

    raw = agent.key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                  serialization.NoEncryption())
    emitted = json.dumps([e.to_wire() for e in agent.events]) + json.dumps(proof)
    from agent.signing import b64url

    assert b64url(raw) not in emitted and raw.hex() not in emitted


def test_wrong_password_and_one_staff_per_terminal(hq: LiveHq, tmp_path: Path) -> None:
    agent = Agent(hq, tmp_path)
    with pytest.raises(BindingError) as wrong:
        agent.manager.signin("S001", "not the password")
    assert wrong.value.code == ops.ERR_BAD_CREDENTIALS and agent.manager.staff() is None
    agent.manager.signin("S001", PASSWORD)
    with pytest.raises(BindingError) as other:
        agent.manager.signin("S002", PASSWORD)
    assert other.value.code == ops.ERR_ALREADY_SIGNED_IN
    assert agent.manager.signout() == {"staff": "S001"}
    assert agent.manager.signin("S002", PASSWORD) == {"staff": "S002"}
    assert agent.manager.signout()["staff"] == "S002" and agent.manager.signout() == {"staff": None}


def test_the_token_is_refreshed_with_a_fresh_device_signature_before_it_expires(hq: LiveHq, tmp_path: Path) -> None:
    hq.publish({"binding": {"token_ttl_s": 3}})
    agent = Agent(hq, tmp_path)
    key = hq.gateway_key()
    agent.sign_in_and_acknowledge()
    signed_in = time.monotonic()
    first = agent.manager.proof("GET", URL)["headers"]["X-TG-Session"]
    while agent.manager.proof("GET", URL)["headers"]["X-TG-Session"] == first:
        assert time.monotonic() < signed_in + 8, "no refresh within 8 s of a 3 s token"
        agent.manager.tick()
        time.sleep(0.2)
    time.sleep(max(0.0, signed_in + 3.5 - time.monotonic()))  # the first token has expired by now
    assert verify(hq, key, agent.manager.proof("GET", URL)["headers"])["decision"] == "allow"
    old_proof = make_proof(agent.key, device_id=agent.client.device_id, token=first, method="GET", url=URL,
                           now=time.time())
    assert verify(hq, key, {"X-TG-Session": first, "X-TG-Proof": old_proof})["reason"] == "expired_token"


def test_idle_timeout_signs_out_and_tells_hq(hq: LiveHq, tmp_path: Path) -> None:
    agent = Agent(hq, tmp_path, {"idle_signout_s": 600})
    key = hq.gateway_key()
    agent.sign_in_and_acknowledge()
    headers = agent.manager.proof("GET", URL)["headers"]
    agent.platform.idle = 599.0
    agent.manager.tick()
    assert agent.manager.staff() == "S001"
    agent.platform.idle = 601.0
    agent.manager.tick()
    assert agent.manager.staff() is None and agent.changes[-1] is None
    signed_out = agent.events[-1]
    assert signed_out.kind == "session.signed_out" and signed_out.body["reason"] == "idle"
    # What the uplink would deliver: HQ ends the session and verify says so.
    answer = agent.client.request("POST", "/v1/events", {"events": [signed_out.to_wire()]})
    assert answer["accepted"] == 1
    assert verify(hq, key, headers)["reason"] == "signed_out"


def test_logoff_of_the_os_user_who_signed_in_signs_out(hq: LiveHq, tmp_path: Path) -> None:
    agent = Agent(hq, tmp_path)
    agent.platform.sessions = [UserSession(user="clerk", terminal=":0", host=None, started=0.0, remote=False)]
    agent.sign_in_and_acknowledge()
    agent.platform.sessions = [UserSession(user="clerk", terminal="rdp", host="203.0.113.4", started=0.0,
                                           remote=True)]
    agent.manager.tick()
    assert agent.manager.staff() is None and agent.events[-1].body["reason"] == "logoff"


def test_shift_end_from_the_outlet_hours_signs_out(hq: LiveHq, tmp_path: Path) -> None:
    hour = time.gmtime().tm_hour
    hours = {"start": f"{hour:02d}:00", "end": f"{(hour + 1) % 24:02d}:00", "utc_offset_minutes": 0}
    agent = Agent(hq, tmp_path, {"hours": {"outlets": {"o1": hours}}})
    agent.sign_in_and_acknowledge()
    agent.manager.tick()
    assert agent.manager.staff() == "S001"
    agent.clock.offset = 3600.0
    agent.manager.tick()
    assert agent.manager.staff() is None and agent.events[-1].body["reason"] == "shift_end"


def test_an_acknowledgement_made_while_hq_is_away_is_queued_then_delivered(hq: LiveHq, tmp_path: Path) -> None:
    agent = Agent(hq, tmp_path)
    agent.manager.signin("S001", PASSWORD)
    reachable = agent.access
    dead = hq.device("o1")[0]
    dead._base = "http://127.0.0.1:9"  # nothing listens on the discard port
    agent.access = DeviceAccess(client=dead, key=agent.key, outlet_id="o1")
    answer = agent.manager.acknowledge("S001", default_policy_text()["hash"], "S001")
    assert answer["queued"] is True and agent.manager.attention() == []
    with pytest.raises(BindingError) as waiting:
        agent.manager.proof("GET", URL)
    assert waiting.value.code == ops.ERR_POLICY_ACK_REQUIRED
    agent.access = reachable
    agent.clock.offset = 10.0  # past the retry pause
    agent.manager.tick()
    assert agent.manager.proof("GET", URL)["staff"] == "S001"


def test_a_suspension_at_hq_ends_the_session_at_the_next_refresh(hq: LiveHq, tmp_path: Path) -> None:
    hq.publish({"binding": {"token_ttl_s": 3}})
    agent = Agent(hq, tmp_path)
    agent.sign_in_and_acknowledge()
    from hq.staff import commands

    commands.staff_suspend(hq.state.sessions, staff_id="S001", reason="test")
    hq.binding.directory.poll()
    agent.clock.offset = 2.5
    agent.manager.tick()
    assert agent.manager.staff() is None and agent.events[-1].body["reason"] == "hq:staff_suspended"
    last = agent.manager.last_signout()
    assert last is not None and (last["reason"], last["staff"]) == ("hq:staff_suspended", "S001")
    with pytest.raises(BindingError) as suspended:
        agent.manager.signin("S001", PASSWORD)
    assert suspended.value.code == ops.ERR_STAFF_SUSPENDED


def test_a_session_the_agent_ended_is_remembered_with_why_until_the_staff_sign_out_themselves(
    hq: LiveHq, tmp_path: Path
) -> None:
    agent = Agent(hq, tmp_path, {"idle_signout_s": 600})
    assert agent.manager.last_signout() is None
    agent.sign_in_and_acknowledge()
    agent.platform.idle = 601.0
    before = agent.clock()
    agent.manager.tick()
    last = agent.manager.last_signout()
    assert last is not None and (last["reason"], last["staff"]) == (ops.SIGNOUT_IDLE, "S001")
    assert before <= last["at"] <= agent.clock()
    last["reason"] = "changed by a reader"
    assert agent.manager.last_signout() == {**last, "reason": ops.SIGNOUT_IDLE}, "readers get a copy"

    agent.platform.idle = 0.0
    agent.manager.signin("S002", PASSWORD)
    assert agent.manager.last_signout() == {**last, "reason": ops.SIGNOUT_IDLE}, "kept while S002 works"
    agent.manager.signout()
    assert agent.manager.last_signout() is None, "the staff's own sign-out needs no explanation"
    agent.manager.signout("idle")
    assert agent.manager.last_signout() is None, "nobody was signed in: no session ended"
