"""A real agent process against an HQ that answers 500, hangs, or talks nonsense: it keeps running."""

from __future__ import annotations

import json
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.events import Event
from agent.signing import public_key_text
from tests.agent_process import AgentProcess, wait_until
from tests.scripted_hq import Answer, ScriptedHq

POLICY_KEY = Ed25519PrivateKey.generate()


def enroll_answer() -> Answer:
    return Answer(body={"device_id": "dev-scripted", "outlet_id": "o1", "server_time": time.time(),
                        "policy_public_key": public_key_text(POLICY_KEY), "heartbeat_interval_s": 1})


def test_the_agent_rides_out_500s_hangs_and_garbage_then_delivers_everything(tmp_path):
    with ScriptedHq(policy_key=POLICY_KEY) as hq:
        hq.then("/v1/enroll", enroll_answer())
        agent = AgentProcess(tmp_path / "pc", backoff_max_s=1.0)
        agent.config.write_text(agent.config.read_text().replace("[hq]\n", "") + "\n[hq]\ntimeout_s = 1\n")
        agent.enroll(hq.url, "token", None)
        bad = [Answer(status=500, body={"error": "boom"})] * 3 + [Answer(delay_s=3.0, body={})] * 2 + \
              [Answer(body=b"<html>proxy error</html>")] * 3
        hq.then("/v1/heartbeat", *bad)
        hq.then("/v1/events", *bad)
        with agent.spool() as spool:
            events = [Event("test", {"n": i}) for i in range(40)]
            spool.put_many(events)
        agent.start()
        try:
            status = wait_until(lambda: (s := agent.status())["last_error"] and s, 20, what="an error in status")
            assert status["hq_reachable"] is False and agent.alive()

            def delivered():
                ids = {e["id"] for r in hq.requests_to("/v1/events") if r.body.startswith(b"{")
                       for e in json.loads(r.body)["events"]}
                return ids >= {e.id for e in events}

            wait_until(delivered, 60, interval=0.5, what="every event delivered after HQ recovers")
            wait_until(lambda: agent.status()["hq_reachable"], 20, what="status back to reachable")
            assert agent.alive()
            logged = " ".join(line.get("msg", "") for line in agent.log_lines())
            assert "HQ answered 500" in logged and "non-JSON" in logged
        finally:
            agent.stop()
