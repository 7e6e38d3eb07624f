"""HQ killed or restarted in the middle of a batch, several times over, while the agent uploads a
backlog and new events keep coming: every event is stored exactly once, and delivery resumes by
itself when HQ is back.
"""

from __future__ import annotations

import time

from agent.spool import Spool
from tests.agent_process import wait_until
from tests.chaos.harness import (
    Feeder,
    HqView,
    Record,
    assert_exactly_once,
    chaos_events,
    enrolled_agent,
    running,
    scaled,
)
from tests.hq_server import HqServer

RESTARTS = int(scaled(4, 16))
BACKLOG = int(scaled(5000, 20000))


def test_hq_restarted_in_the_middle_of_batches_stores_every_event_once(hq: HqServer, view: HqView, tmp_path):
    agent, _ = enrolled_agent(hq, tmp_path / "pc", batch_size=200, backoff_max_s=1.0)
    with Spool(agent.state_dir / "spool.sqlite3") as spool:
        backlog = chaos_events(BACKLOG, "restart")
        spool.put_many(backlog)
    resumed: list[float] = []
    startups: list[float] = []
    # A steady stream on top of the backlog, so there is always a batch in flight to interrupt.
    feeder = Feeder(agent.state_dir / "spool.sqlite3", per_tick=20, tick_s=0.2, tag="stream").start()
    try:
        with running(agent):
            for round_ in range(RESTARTS):
                floor = len(view.event_ids())
                wait_until(lambda floor=floor: len(view.event_ids()) > floor + 200, 60, interval=0.05,
                           what="uploads under way")
                if round_ % 2:
                    hq.stop()  # SIGTERM: uvicorn finishes what is in flight, then exits
                else:
                    hq.kill()  # SIGKILL: a crash, a batch half received
                at_stop = len(view.event_ids())
                time.sleep(1.0)
                starting = time.monotonic()
                hq.start()
                ready = time.monotonic()  # HQ accepts TLS again: from here on the wait is the agent's
                startups.append(ready - starting)
                wait_until(lambda at_stop=at_stop: len(view.event_ids()) > at_stop, 60, interval=0.1,
                           what="delivery resumed after HQ restart")
                resumed.append(time.monotonic() - ready)
            fed = feeder.stop()
            expected = {e.id for e in backlog} | set(fed)
            waited = assert_exactly_once(view, expected, 120)
    finally:
        feeder.stop()
    Record("HQ restarted mid-batch", {"restarts": RESTARTS, "events": len(expected), "lost": 0, "duplicates": 0,
                                      "hq_start_s_max": round(max(startups), 1),
                                      "agent_resumed_after_hq_ready_s_max": round(max(resumed), 1),
                                      "rest_delivered_after_s": round(waited, 1)}).emit()
