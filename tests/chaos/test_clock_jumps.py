"""Clock jumps of one hour either way.

The agent has no clock hook of its own, so two tests look at it from both sides:

- HQ's side: a device whose timestamps are an hour off is refused with stale_timestamp and told
  HQ's time; the agent's HqClient adopts that offset and the retry goes through, both ways.
- The real agent process, run through tests/chaos/clock_shim.py, which shifts its wall clock by
  an hour on a signal (monotonic time untouched, as with a real clock step): heartbeats and
  deliveries carry on through jumps ahead and back and through a restart with the clock behind
  the sequence numbers already used; nothing is lost or stored twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.hqclient import HqClient
from agent.spool import Spool
from tests.agent_process import AgentProcess, wait_until
from tests.chaos.harness import (
    Feeder,
    HqView,
    Record,
    assert_exactly_once,
    chaos_events,
    token_for,
    wait_for_heartbeat,
)
from tests.hq.device_client import DeviceClient, pinned_client
from tests.hq_server import HqServer

SHIM = Path(__file__).with_name("clock_shim.py")
HOUR = 3600


class ShiftedAgent(AgentProcess):
    """The real agent, started through the clock shim, ``offset_s`` off from the true time."""

    offset_s = 0.0

    def start(self) -> None:
        env = {**os.environ, "TG_CHAOS_CLOCK_OFFSET_S": str(self.offset_s)}
        with open(self.log_path, "ab") as err:
            self.proc = subprocess.Popen([sys.executable, str(SHIM), "--config", str(self.config), "run"],
                                         stdout=err, stderr=err, env=env)

    def jump(self, hours: int) -> None:
        assert self.proc is not None
        for _ in range(abs(hours)):
            self.proc.send_signal(signal.SIGUSR1 if hours > 0 else signal.SIGUSR2)
            time.sleep(0.1)


def stale_refusals(hq: HqServer, device_id: str) -> int:
    """stale_timestamp refusals of this device in HQ's audit trail (repeats are folded into a count)."""
    records = [json.loads(line) for line in hq.cli("audit", "--json").stdout.splitlines()]
    return sum(r["count"] for r in records if r["reason"] == "stale_timestamp" and r["device_id"] == device_id)


def test_hq_refuses_a_device_an_hour_off_and_the_client_recovers_with_server_time(hq: HqServer):
    with pinned_client(hq.url, str(hq.ca_file)) as http:
        device = DeviceClient(http)
        assert device.enroll(token_for(hq)).status_code == 200
        for offset in (HOUR, -HOUR):
            refused = device.signed("POST", "/v1/heartbeat", {"agent_version": "0.1.0"},
                                    timestamp=int(time.time()) + offset)
            assert refused.status_code == 401 and refused.json()["error"] == "stale_timestamp"
            assert abs(refused.json()["server_time"] - time.time()) < 5
        key: Ed25519PrivateKey = device.key
    seq = iter(range(10**6, 10**7))
    client = HqClient(hq.url, device_id=device.device_id, key=key, ca_file=str(hq.ca_file),
                      next_seq=lambda: next(seq))
    try:
        for offset in (HOUR, -HOUR):
            # What a client that learned its offset before the PC's clock stepped an hour sends.
            client.clock_offset_s = float(offset)
            answer = client.request("POST", "/v1/heartbeat", {"agent_version": "0.1.0"})
            assert abs(answer["server_time"] - time.time()) < 5
            assert abs(client.clock_offset_s) < 5, "the client kept the wrong offset after HQ's answer"
    finally:
        client.close()
    wait_until(lambda: stale_refusals(hq, device.device_id) >= 4, 20, what="the refusals in HQ's audit trail")


def test_the_agent_rides_through_clock_jumps_and_a_restart_with_the_clock_behind(hq: HqServer, view: HqView,
                                                                               tmp_path):
    agent = ShiftedAgent(tmp_path / "pc", batch_size=50)
    device_id = agent.enroll(hq.url, token_for(hq), hq.ca_file)["device_id"]
    spool_path = agent.state_dir / "spool.sqlite3"
    with Spool(spool_path) as spool:
        backlog = chaos_events(500, "clock")
        spool.put_many(backlog)
    feeder = Feeder(spool_path, per_tick=5, tick_s=0.5, tag="clock").start()
    recoveries: dict[str, float] = {}
    try:
        agent.start()
        wait_for_heartbeat(view, device_id)
        for label, hours in (("+1 h", 1), ("-1 h", -2), ("back to true time", 1)):
            beats = view.device(device_id)["heartbeat_count"]
            agent.jump(hours)
            jumped = time.monotonic()
            wait_for_heartbeat(view, device_id, after=beats + 2, timeout=30)
            recoveries[label] = round(time.monotonic() - jumped, 1)
            assert agent.alive()
        # Restart with the clock an hour behind the sequence numbers already used.
        agent.jump(-1)
        agent.stop()
        agent.offset_s = -HOUR
        agent.start()
        beats = view.device(device_id)["heartbeat_count"]
        restarted = time.monotonic()
        wait_for_heartbeat(view, device_id, after=beats + 2, timeout=30)
        recoveries["restart 1 h behind"] = round(time.monotonic() - restarted, 1)
        fed = feeder.stop()
        expected = {e.id for e in backlog} | set(fed)
        assert_exactly_once(view, expected, 60)
        offset = view.device(device_id)["posture"].get("clock_offset_s")
        assert offset is not None and abs(offset - HOUR) < 30, f"HQ sees clock_offset_s={offset}, expected ~+3600"
    finally:
        feeder.stop()
        if agent.alive():
            agent.stop()
    replayed = [line for line in agent.log_lines() if "replayed" in line.get("msg", "")]
    refusals = wait_until(lambda: stale_refusals(hq, device_id), 20, what="the jumps' refusals audited")
    # Each jump made HQ refuse a request once, and the agent corrected itself from server_time.
    assert refusals >= 3, f"only {refusals} stale_timestamp refusals: the clock jumps did not reach the wire"
    Record("clock jumps ±1 h (agent process, clock shim)", {"heartbeats_back_after_s": recoveries,
                                                            "events": len(expected), "lost": 0, "duplicates": 0,
                                                            "stale_timestamp_refusals": refusals,
                                                            "replayed_refusals": len(replayed)}).emit()
