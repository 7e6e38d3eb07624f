"""A real agent process signs the staff out when logind says the console is locked, and HQ hears
of it; without a bus the agent says so once and keeps running. logind is played on a private
dbus-daemon that the agent finds through DBUS_SYSTEM_BUS_ADDRESS, as any D-Bus client would."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.platform.fake_logind import FakeLogind, FakeSession, private_bus
from tests.agent_process import AgentProcess, wait_until
from tests.hq_server import HqServer

PASSWORD = "correct horse battery"


@pytest.fixture
def hq(tmp_path: Path) -> Iterator[HqServer]:
    server = HqServer(data_dir=tmp_path / "hq")
    server.start()
    try:
        # The password comes from stdin, which HqServer.cli does not take.
        done = subprocess.run([*server._base(), "staff", "add", "--id", "S1", "--outlet", "o1", "--name",
                               "Person S1"], input=PASSWORD + "\n", capture_output=True, text=True, env=server.env)
        assert done.returncode == 0, done.stderr
        yield server
    finally:
        server.stop()


def enrolled_agent(hq: HqServer, root: Path) -> AgentProcess:
    agent = AgentProcess(root)
    agent.enroll(hq.url, hq.cli("token", "create", "--outlet", "o1").stdout.splitlines()[-1], hq.ca_file)
    return agent


def hq_events(hq: HqServer, kind: str) -> list[dict[str, Any]]:
    done = hq.cli("events", "--json", "--kind", kind)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def sign_in(agent: AgentProcess, staff: str) -> None:
    done = agent.cli("signin", "--staff", staff, input=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    if "must be acknowledged" in done.stdout:
        done = agent.cli("acknowledge", "--staff", staff, input=staff + "\n")
        assert done.returncode == 0, done.stderr


def test_locking_the_console_signs_the_staff_out_and_hq_records_it(
        hq: HqServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with private_bus() as bus:
        logind = FakeLogind(bus, [FakeSession("c1", "clerk")])
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus)
        agent = enrolled_agent(hq, tmp_path / "pc")
        agent.start()
        try:
            wait_until(lambda: agent.status().get("running"), 30, what="agent running")
            assert wait_until(lambda: "screen_lock: " not in json.dumps(agent.status()["sensor_failures"])
                              and any("watching systemd-logind" in line.get("msg", "")
                                      for line in agent.log_lines()), 15, what="watcher on the bus")
            sign_in(agent, "S1")
            before = agent.status()
            assert (before["staff"], before["last_signout"], before["screen_lock"]) == ("S1", None, "watching")
            logind.set_locked_hint("c1", True)
            wait_until(lambda: agent.status()["staff"] is None, 5, what="sign-out on lock")
            last = agent.status()["last_signout"]  # `terminal-guard status` says why
            assert (last["reason"], last["staff"]) == ("screen_locked", "S1") and last["at"] > 0
            (event,) = wait_until(lambda: hq_events(hq, "session.signed_out"), 15, what="sign-out at HQ")
            assert event["body"]["reason"] == "screen_locked" and event["body"]["staff_id"] == "S1"
            assert agent.alive()
        finally:
            code = agent.stop()
            logind.close()
        assert code == 0


def test_without_a_bus_the_agent_says_so_once_and_keeps_running(
        hq: HqServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path / 'no-bus'}")
    agent = enrolled_agent(hq, tmp_path / "pc")
    agent.start()
    try:
        failures = wait_until(lambda: [f for f in agent.status().get("sensor_failures") or []
                                       if f.startswith("screen_lock: no D-Bus system bus")], 30,
                              what="screen_lock in status")
        assert "staff are not signed out when the screen locks" in failures[0]
        sign_in(agent, "S1")  # everything else works as before
        assert agent.status()["staff"] == "S1" and agent.alive()
        said = [line for line in agent.log_lines() if "screen locks are not watched" in line.get("msg", "")]
        assert len(said) == 1
    finally:
        assert agent.stop() == 0
