"""A locked console screen ends the staff session, like an idle timeout: against a real HQ, with the
OS faked (FakePlatform) or played on a real D-Bus (the logind watcher)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.backoff import Backoff
from agent.binding.manager import BindingManager, DeviceAccess
from agent.events import Event
from agent.localchannel.default_policy import default_policy_text
from agent.platform.fake import FakePlatform
from agent.platform.logind import LogindLockWatch
from agent.policy import CurrentPolicy, Policy, parse_policy_body
from agent.spool import Spool
from tests.agent.binding.live_hq import PASSWORD, LiveHq, live_hq
from tests.agent.platform.fake_logind import FakeLogind, FakeSession, private_bus

URL = "https://waybill.example/outlets/o1/waybills/WB0000000001"


class Terminal:
    """A BindingManager wired as the service wires it, its events kept (or spooled) for the test."""

    def __init__(self, hq: LiveHq, tmp_path: Path, *, spool: Spool | None = None,
                 policy_body: dict[str, Any] | None = None) -> None:
        self.client, self.key = hq.device("o1")
        self.access = DeviceAccess(client=self.client, key=self.key, outlet_id="o1")
        self.events: list[Event] = []
        self.platform = FakePlatform(tmp_path)
        self.before_hq: list[Any] = []
        body = parse_policy_body(policy_body or {})
        policy = CurrentPolicy(None, Policy(version=1, issued_at="-", body=body, document={}, signature=""))
        self.manager = BindingManager(access=self._access, policy=policy,
                                      policy_text=lambda: {**default_policy_text(), "version": 1},
                                      put_event=spool.put if spool else self.events.append,
                                      on_change=lambda staff: None, platform=self.platform)
        self.platform.screen_lock_watch().start(self.manager.screen_lock_changed, lambda problem: None)

    def _access(self) -> DeviceAccess:
        for step in self.before_hq:
            step()
        return self.access

    def sign_in(self, staff: str = "S001") -> dict[str, str]:
        self.manager.signin(staff, PASSWORD)
        assert self.manager.acknowledge(staff, default_policy_text()["hash"], staff)["queued"] is False
        return dict(self.manager.proof("GET", URL)["headers"])


def verify(hq: LiveHq, key: str, headers: dict[str, str]) -> dict[str, Any]:
    body = {"method": "GET", "url": URL, "session": headers.get("X-TG-Session"), "proof": headers.get("X-TG-Proof")}
    return dict(httpx.post(hq.url + "/v1/verify", json=body, headers={"X-TG-Gateway-Key": key}).json())


@pytest.fixture
def hq(tmp_path: Path) -> Iterator[LiveHq]:
    with live_hq(tmp_path / "hq") as server:
        server.staff("S001")
        yield server


def test_policy_can_keep_staff_signed_in_when_the_screen_locks(hq: LiveHq, tmp_path: Path) -> None:
    terminal = Terminal(hq, tmp_path, policy_body={"binding": {"signout_on_lock": False}})
    terminal.sign_in()
    terminal.platform.lock()
    assert terminal.manager.staff() == "S001" and terminal.manager.last_signout() is None
    assert [event.kind for event in terminal.events].count("session.signed_out") == 0


def test_signout_on_lock_must_be_true_or_false() -> None:
    with pytest.raises(ValueError, match=r"body\.binding\.signout_on_lock: expected true or false, got str"):
        parse_policy_body({"binding": {"signout_on_lock": "no"}})


def test_locking_the_console_signs_out_and_hq_ends_the_session(hq: LiveHq, tmp_path: Path) -> None:
    terminal = Terminal(hq, tmp_path)
    key = hq.gateway_key()
    headers = terminal.sign_in()
    assert verify(hq, key, headers)["decision"] == "allow"
    terminal.platform.lock()
    assert terminal.manager.staff() is None
    last = terminal.manager.last_signout()
    assert last is not None and (last["reason"], last["staff"]) == ("screen_locked", "S001")
    signed_out = terminal.events[-1]
    assert signed_out.kind == "session.signed_out"
    assert signed_out.body == {"staff_id": "S001", "session_id": signed_out.body["session_id"],
                               "reason": "screen_locked"}
    # What the uplink delivers: HQ ends the session and verify says so.
    assert terminal.client.request("POST", "/v1/events", {"events": [signed_out.to_wire()]})["accepted"] == 1
    assert verify(hq, key, headers)["reason"] == "signed_out"


def test_unlocks_and_locks_of_remote_sessions_leave_the_staff_signed_in(hq: LiveHq, tmp_path: Path) -> None:
    terminal = Terminal(hq, tmp_path)
    terminal.sign_in()
    terminal.platform.unlock()
    terminal.platform.lock(session="rdp-2", user="admin", console=False)
    assert terminal.manager.staff() == "S001"
    assert [e.kind for e in terminal.events] == ["session.signed_in", "policy.acknowledged"]


def test_a_lock_with_nobody_signed_in_changes_nothing(hq: LiveHq, tmp_path: Path) -> None:
    terminal = Terminal(hq, tmp_path)
    terminal.platform.lock()
    assert terminal.events == [] and terminal.manager.staff() is None


def test_a_lock_while_hq_answers_the_sign_in_signs_out_at_once(hq: LiveHq, tmp_path: Path) -> None:
    terminal = Terminal(hq, tmp_path)
    terminal.before_hq.append(terminal.platform.lock)  # the clerk locks while the sign-in is on its way
    terminal.manager.signin("S001", PASSWORD)
    assert terminal.manager.staff() is None
    assert [e.kind for e in terminal.events] == ["session.signed_in", "session.signed_out"]
    assert terminal.events[-1].body["reason"] == "screen_locked"
    terminal.before_hq.clear()
    terminal.manager.signin("S001", PASSWORD)  # the next sign-in is not haunted by that lock
    assert terminal.manager.staff() == "S001"


def test_the_sign_out_waits_in_the_spool_while_hq_is_away(hq: LiveHq, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    terminal = Terminal(hq, tmp_path, spool=spool)
    terminal.sign_in()
    dead = hq.device("o1")[0]
    dead._base = "http://127.0.0.1:9"  # nothing listens on the discard port
    terminal.access = DeviceAccess(client=dead, key=terminal.key, outlet_id="o1")
    terminal.platform.lock()
    assert terminal.manager.staff() is None
    (signed_out,) = [e for e in spool.peek(100) if e.kind == "session.signed_out"]
    assert signed_out.body["reason"] == "screen_locked"
    spool.close()


def test_a_logind_lock_on_the_bus_signs_the_staff_out_within_a_second(hq: LiveHq, tmp_path: Path) -> None:
    with private_bus() as bus:
        logind = FakeLogind(bus, [FakeSession("c1", "clerk"), FakeSession("s7", "admin", seat="", remote=True)])
        terminal = Terminal(hq, tmp_path)
        watch = LogindLockWatch(bus, retry=Backoff(0.02, 0.05))
        states: list[str | None] = []
        watch.start(terminal.manager.screen_lock_changed, states.append)
        try:
            deadline = time.monotonic() + 5
            while states != [None]:
                assert time.monotonic() < deadline, f"watcher states: {states}"
                time.sleep(0.01)
            terminal.sign_in()
            logind.set_locked_hint("s7", True)  # an SSH session's locker: not the console
            time.sleep(0.3)
            assert terminal.manager.staff() == "S001"
            logind.set_locked_hint("c1", True)
            locked_at = time.monotonic()
            while terminal.manager.staff() is not None:
                assert time.monotonic() - locked_at < 1.0, "not signed out within 1 s of the lock"
                time.sleep(0.01)
            assert [e.body.get("reason") for e in terminal.events if e.kind == "session.signed_out"] == \
                ["screen_locked"]
        finally:
            assert watch.stop(2.0)
            logind.close()
