"""A slow, cutting and truncating network between the agent and HQ (tests/chaos/proxy.py): answers
lost after HQ committed, TLS records cut in half, uploads crawling past the agent's timeout.
Every event is stored exactly once, and delivery is back to normal as soon as the network is.
"""

from __future__ import annotations

import time

from agent.spool import Spool
from tests.chaos.harness import (
    Feeder,
    HqView,
    Record,
    assert_exactly_once,
    chaos_events,
    enrolled_agent,
    running,
    scaled,
    wait_for_heartbeat,
)
from tests.chaos.proxy import FaultProxy
from tests.hq_server import HqServer

FAULTY_S = scaled(30, 180)
BAD_NETWORK = {"pass": 2.0, "slow": 1.0, "cut": 2.0, "truncate": 2.0}


def test_a_slow_cutting_truncating_network_loses_and_duplicates_nothing(hq: HqServer, view: HqView, tmp_path):
    with FaultProxy(hq.port, seed=3) as proxy:
        agent, device_id = enrolled_agent(hq, tmp_path / "pc", url=proxy.url, batch_size=50, backoff_max_s=1.0,
                                          extra_config="\n[hq]\ntimeout_s = 2\n")
        with Spool(agent.state_dir / "spool.sqlite3") as spool:
            backlog = chaos_events(3000, "backlog")
            spool.put_many(backlog)
        with running(agent):
            wait_for_heartbeat(view, device_id)
            proxy.set_plan(BAD_NETWORK)
            feeder = Feeder(agent.state_dir / "spool.sqlite3", per_tick=5, tick_s=0.25, tag="net").start()
            try:
                time.sleep(FAULTY_S)
            finally:
                fed = feeder.stop()
            delivered_in_faults = len(view.event_ids())
            proxy.set_plan({"pass": 1.0})
            healed = time.monotonic()
            expected = {e.id for e in backlog} | set(fed)
            waited = assert_exactly_once(view, expected, 120)
            assert agent.alive()
        failures = [line for line in agent.log_lines() if "HQ delivery failed" in line.get("msg", "")]
    counts = dict(proxy.counts)
    assert counts.get("cut_answer", 0) + counts.get("truncate_answer", 0) >= 5, f"too few answers were cut: {counts}"
    assert failures, "the agent never noticed the bad network"
    Record("slow/cutting/truncating proxy", {"faulty_s": FAULTY_S, "connections": counts, "events": len(expected),
                                             "delivered_while_faulty": delivered_in_faults,
                                             "agent_errors": len(failures), "lost": 0, "duplicates": 0,
                                             "rest_delivered_after_heal_s": round(time.monotonic() - healed, 1),
                                             "waited_s": round(waited, 1)}).emit()
