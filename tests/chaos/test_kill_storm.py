"""The agent killed with SIGKILL every few seconds while it uploads and findings keep coming:
nothing is lost and nothing is stored twice.
"""

from __future__ import annotations

import itertools
import random
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
)
from tests.hq_server import HqServer

STORM_S = scaled(40, 120)
BACKLOG = int(scaled(4000, 12000))


def test_an_agent_killed_every_few_seconds_during_uploads_loses_and_duplicates_nothing(
        hq: HqServer, view: HqView, tmp_path):
    agent, _ = enrolled_agent(hq, tmp_path / "pc", batch_size=50)
    spool_path = agent.state_dir / "spool.sqlite3"
    with Spool(spool_path) as spool:
        backlog = chaos_events(BACKLOG, "backlog")
        spool.put_many(backlog)
    feeder = Feeder(spool_path, per_tick=5, tick_s=0.2, tag="storm").start()
    rng = random.Random(9)
    kills = 0
    delivered_at_kills: list[int] = []
    try:
        storm_end = time.monotonic() + STORM_S
        while time.monotonic() < storm_end:
            agent.start()
            time.sleep(rng.uniform(2.0, 4.0))
            agent.kill()
            kills += 1
            delivered_at_kills.append(len(view.event_ids()))
    finally:
        fed = feeder.stop()
        if agent.alive():
            agent.kill()
    expected = {e.id for e in backlog} | set(fed)
    # The kills landed while uploads were under way: HQ's count moved between kills, and not all was in.
    moving = sum(1 for a, b in itertools.pairwise(delivered_at_kills) if b > a)
    assert moving >= 3, f"uploads hardly progressed between kills: {delivered_at_kills}"
    assert delivered_at_kills[-1] < len(expected), "the storm ended after everything was delivered"
    with running(agent):
        waited = assert_exactly_once(view, expected, 120)
    Record("agent SIGKILL storm", {"storm_s": STORM_S, "kills": kills, "lives_with_uploads": moving,
                                   "events": len(expected),
                                   "delivered_during_storm": delivered_at_kills[-1],
                                   "rest_delivered_after_s": round(waited, 1), "lost": 0, "duplicates": 0}).emit()
