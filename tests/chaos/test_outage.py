"""HQ away for a long outage while findings keep coming: the spool bound holds, every loss is
counted exactly and reported, and everything within the bound is delivered once HQ is back.

Intervals are shortened so the outage covers many heartbeats, backoffs and evictions: a 1 s
heartbeat and a 2 s backoff cap stand for 10 s and 60 s, a spool of ~300 events for 64 MB.
"""

from __future__ import annotations

import time

from agent.spool import LOSS_EXPIRED, LOSS_SPOOL_FULL, Spool
from tests.agent_process import wait_until
from tests.chaos.harness import (
    Feeder,
    HqView,
    Record,
    assert_exactly_once,
    chaos_events,
    configure,
    enrolled_agent,
    event_size,
    findings_spooled,
    running,
    scaled,
    wait_for_heartbeat,
)
from tests.hq_server import HqServer

OUTAGE_S = scaled(30, 600)
BOUND_EVENTS = 300


def test_a_long_outage_keeps_the_bound_counts_every_loss_and_delivers_the_rest(hq: HqServer, view: HqView,
                                                                            tmp_path):
    max_bytes = BOUND_EVENTS * event_size()
    # Both kinds of loss in one run: a burst of twice the bound early in the outage overflows the
    # spool (spool_full); then a trickle, while the burst's survivors grow older than max_age (expired).
    max_age_s = OUTAGE_S / 3
    agent, device_id = enrolled_agent(hq, tmp_path / "pc", backoff_max_s=2.0)
    configure(agent, "spool", max_bytes=max_bytes, max_age_s=float(max_age_s))
    with running(agent):
        wait_for_heartbeat(view, device_id)
        with Spool(agent.state_dir / "spool.sqlite3", max_bytes=max_bytes, max_age_s=max_age_s) as spool:
            before = chaos_events(20, "before")
            spool.put_many(before)
        assert_exactly_once(view, {e.id for e in before}, 20)

        hq.stop()
        burst_s = max_age_s / 3
        burst = int(2 * BOUND_EVENTS / (burst_s / 0.5))
        # The trickle alone never holds more than half the bound: what it loses is lost to age only.
        trickle_per_tick = BOUND_EVENTS / 2 / max_age_s * 0.5
        owed = 0.0

        def per_tick(elapsed: float) -> int:
            nonlocal owed
            if elapsed < burst_s:
                return burst
            owed += trickle_per_tick
            whole = int(owed)
            owed -= whole
            return whole

        feeder = Feeder(agent.state_dir / "spool.sqlite3", per_tick=per_tick, tick_s=0.5, tag="outage",
                        max_bytes=max_bytes, max_age_s=max_age_s).start()
        outage_end = time.monotonic() + OUTAGE_S
        while time.monotonic() < outage_end:
            time.sleep(1)
            assert agent.alive(), "the agent died during the outage"
        fed = feeder.stop()
        status = agent.status()
        assert status["hq_reachable"] is False, status
        with Spool(agent.state_dir / "spool.sqlite3", max_bytes=max_bytes, max_age_s=max_age_s) as spool:
            waiting_bytes = spool.size_bytes()
            counted = spool.losses()
        assert feeder.max_seen_bytes <= max_bytes, f"spool held {feeder.max_seen_bytes} > {max_bytes} bytes"
        assert waiting_bytes <= max_bytes
        assert counted.get(LOSS_SPOOL_FULL, 0) > 0 and counted.get(LOSS_EXPIRED, 0) > 0, \
            f"the outage was meant to overflow the spool and to age events out: {counted}"

        restarted = time.monotonic()
        hq.start()
        # Nothing is fed after the outage, so whatever is missing at HQ must be exactly what the
        # agent counted and reported as lost, and the oldest (eviction and expiry both take the oldest).
        wait_until(lambda: agent.status()["spool_depth"] == 0, 60, what="spool drained after HQ came back")
        drained_s = time.monotonic() - restarted
        drained_at = time.time()
        stored = set(view.event_ids()) - {e.id for e in before}
        lost = [event_id for event_id in fed if event_id not in stored]
        assert stored <= set(fed), "HQ holds outage events that were never fed"
        assert fed[len(lost):] == [event_id for event_id in fed if event_id in stored], \
            "the events lost were not the oldest ones"
        ids = view.event_ids()
        assert len(ids) == len(set(ids)), "an event was stored twice"
        # Within the bound: every event that was never older than max_age reached HQ.
        young = {e for e in fed if feeder.created[e] > drained_at - max_age_s}
        assert young and young <= stored, f"{len(young - stored)} of {len(young)} young events never reached HQ"
        assert len(lost) >= sum(counted.values()), f"{len(lost)} events missing, yet {counted} counted lost"

        # Reported: HQ learns the exact count, and keeps it (a later heartbeat must not erase it).
        beats = view.device(device_id)["heartbeat_count"]
        wait_for_heartbeat(view, device_id, after=beats + 3)
        reported = view.device(device_id)["lost_events"]
        # Real detections on this machine during the outage can be lost too (they age like the rest).
        other_lost = findings_spooled(agent) - len(view.events("finding", device_id=device_id))
        Record("long outage", {"outage_s": OUTAGE_S, "fed": len(fed), "delivered": len(stored),
                               "lost": len(lost), "other_findings_lost": other_lost,
                               "counted_at_return": counted, "hq_reported": reported,
                               "drained_after_s": round(drained_s, 1)}).emit()
        assert sum(reported.values()) == len(lost) + other_lost, \
            f"HQ shows lost_events {reported}, but {len(lost)} fed events and {other_lost} findings were " \
            f"lost ({counted} counted before HQ returned)"
