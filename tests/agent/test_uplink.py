import json
import random
import threading
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.backoff import Backoff
from agent.events import PRIORITY_LOW, Event
from agent.heartbeat import HeartbeatSource
from agent.hqclient import HqClient
from agent.platform.fake import FakePlatform
from agent.policy import CurrentPolicy, PolicyStore
from agent.signing import public_key_text, sign_document
from agent.spool import Spool
from agent.status_file import StatusFile
from agent.uplink import Uplink, UplinkTiming
from tests.scripted_hq import Answer, ScriptedHq

KEY = Ed25519PrivateKey.generate()
HQ_POLICY_KEY = Ed25519PrivateKey.generate()


@pytest.fixture
def hq():
    with ScriptedHq(policy_key=HQ_POLICY_KEY) as server:
        yield server


@pytest.fixture
def spool(tmp_path):
    with Spool(tmp_path / "spool.sqlite3") as s:
        yield s


def make_uplink(hq, spool, tmp_path, *, batch_size=50, device_id="dev-1"):
    counter = iter(range(1, 10**9))
    client = HqClient(hq.url, device_id=device_id, key=KEY, ca_file=None, next_seq=lambda: next(counter),
                      timeout_s=2.0)
    policy = CurrentPolicy(PolicyStore(tmp_path / "policy.json", public_key_text(HQ_POLICY_KEY)))
    platform = FakePlatform(root=tmp_path)
    return Uplink(
        connect=lambda: client, spool=spool, status=StatusFile(tmp_path), policy=policy,
        heartbeats=HeartbeatSource(platform, interval_s=10), backoff=Backoff(1, 60, rng=random.Random(1)),
        timing=UplinkTiming(heartbeat_interval_s=10, policy_interval_s=300, batch_size=batch_size),
    )


def put_events(spool, n, **kw):
    events = [Event("test", {"n": i}, **kw) for i in range(n)]
    spool.put_many(events)
    return {e.id for e in events}


def delivered_ids(hq):
    ids = []
    for request in hq.requests_to("/v1/events"):
        ids.extend(e["id"] for e in json.loads(request.body)["events"])
    return ids


def drain(uplink, rounds=50):
    for _ in range(rounds):
        if uplink.step() > 0:
            return


def test_events_are_delivered_in_batches_and_removed_after_hq_commits(hq, spool, tmp_path):
    ids = put_events(spool, 120)
    drain(make_uplink(hq, spool, tmp_path, batch_size=50))
    assert sorted(delivered_ids(hq)) == sorted(ids)
    assert spool.depth() == 0
    assert [len(json.loads(r.body)["events"]) for r in hq.requests_to("/v1/events")] == [50, 50, 20]


def test_events_stay_in_the_spool_while_hq_fails_and_back_off_grows(hq, spool, tmp_path):
    put_events(spool, 10)
    hq.then("/v1/heartbeat", *[Answer(status=500, body={})] * 3)
    uplink = make_uplink(hq, spool, tmp_path)
    ceilings = []
    for _ in range(3):
        ceilings.append(uplink._backoff.ceiling())
        delay = uplink.step()
        assert 0 < delay <= 60
    assert ceilings == [1, 2, 4]
    assert spool.depth() == 10 and not hq.requests_to("/v1/events")
    assert StatusFile.read(tmp_path)["hq_reachable"] is False
    drain(uplink)
    assert spool.depth() == 0


def test_a_malformed_events_answer_keeps_the_events(hq, spool, tmp_path):
    put_events(spool, 5)
    hq.then("/v1/events", Answer(body={"server_time": time.time()}), Answer(body=b"garbage"))
    uplink = make_uplink(hq, spool, tmp_path)
    uplink.step()
    uplink.step()
    assert spool.depth() == 5
    drain(uplink)
    assert spool.depth() == 0


def test_429_waits_as_long_as_hq_asks(hq, spool, tmp_path):
    put_events(spool, 3)
    hq.then("/v1/events", Answer(status=429, body={}, headers={"Retry-After": "42"}))
    assert make_uplink(hq, spool, tmp_path).step() == 42


def test_413_halves_the_batch_until_hq_takes_it(hq, spool, tmp_path):
    put_events(spool, 40)
    hq.then("/v1/events", Answer(status=413, body=b""), Answer(status=413, body=b""))
    drain(make_uplink(hq, spool, tmp_path, batch_size=40))
    sizes = [len(json.loads(r.body)["events"]) for r in hq.requests_to("/v1/events")]
    assert sizes[:3] == [40, 20, 10]
    assert spool.depth() == 0


def test_408_from_a_slow_link_halves_the_batch_and_never_drops_an_event(hq, spool, tmp_path):
    ids = put_events(spool, 40)
    timeout = Answer(status=408, body={"error": "body_timeout", "detail": "body not received within 30 s"})
    hq.then("/v1/events", timeout, timeout)
    uplink = make_uplink(hq, spool, tmp_path, batch_size=40)
    drain(uplink)
    sizes = [len(json.loads(r.body)["events"]) for r in hq.requests_to("/v1/events")]
    assert sizes[:3] == [40, 20, 10]
    assert sorted(set(delivered_ids(hq))) == sorted(ids)
    put_events(spool, 1)
    hq.then("/v1/events", timeout)
    uplink._batch = 1
    assert uplink.step() > 0, "a single event that times out waits for the backoff"
    assert spool.depth() == 1


def test_an_event_too_large_even_alone_is_dropped_and_counted_in_the_next_heartbeat(hq, spool, tmp_path):
    put_events(spool, 1)
    hq.then("/v1/events", Answer(status=413, body=b""))
    uplink = make_uplink(hq, spool, tmp_path, batch_size=1)
    drain(uplink)
    assert spool.depth() == 0
    uplink._next_heartbeat = 0
    uplink.step()
    last = json.loads(hq.requests_to("/v1/heartbeat")[-1].body)
    assert last["lost_events"] == {"too_large": 1}


def test_a_revoked_device_stops_sending_and_says_so(hq, spool, tmp_path):
    put_events(spool, 5)
    hq.then("/v1/heartbeat", Answer(status=401, body={"error": "device_revoked", "detail": "revoked"}))
    uplink = make_uplink(hq, spool, tmp_path)
    uplink.step()
    sent = len(hq.seen)
    for _ in range(3):
        uplink.step()
    assert len(hq.seen) == sent
    assert StatusFile.read(tmp_path)["revoked"] is True
    assert spool.depth() == 5


def test_loss_totals_go_in_every_heartbeat_so_a_lost_answer_cannot_double_count(hq, tmp_path):
    with Spool(tmp_path / "small.sqlite3", max_bytes=4000) as spool:
        put_events(spool, 100, priority=PRIORITY_LOW)
        lost = spool.losses()["spool_full"]
        assert lost > 0
        # HQ stores the first heartbeat but its answer never arrives; the agent sends again.
        hq.then("/v1/heartbeat", Answer(status=200, body={"server_time": time.time()}, delay_s=3.0))
        uplink = make_uplink(hq, spool, tmp_path)
        uplink.step()
        uplink._next_heartbeat = 0
        uplink.step()
        reports = [json.loads(r.body)["lost_events"] for r in hq.requests_to("/v1/heartbeat")]
        assert reports == [{"spool_full": lost}, {"spool_full": lost}]  # the same totals: HQ keeps the latest
        assert spool.losses() == {"spool_full": lost}


def test_a_badly_signed_policy_is_refused_and_the_last_good_one_kept(hq, spool, tmp_path):
    good = {"version": 1, "issued_at": "2026-11-23T00:00:00Z", "body": {"protected_hosts": ["waybill.example"]}}
    bad = {"version": 2, "issued_at": "2026-11-23T00:00:00Z", "body": {"protected_hosts": []}}
    hq.then("/v1/policy",
            Answer(body={"policy": good, "signature": sign_document(HQ_POLICY_KEY, good), "server_time": 0}),
            Answer(body={"policy": bad, "signature": sign_document(Ed25519PrivateKey.generate(), bad)}))
    uplink = make_uplink(hq, spool, tmp_path)
    uplink.step()
    assert uplink._policy.version == 1
    uplink._next_policy = 0
    uplink.step()
    assert uplink._policy.body.protected_hosts == ("waybill.example",)
    rejected = [e for e in spool.peek(100) if e.kind == "policy.rejected"] or [
        e for r in hq.requests_to("/v1/events") for e in map(Event.from_wire, json.loads(r.body)["events"])
        if e.kind == "policy.rejected"]
    assert rejected and "signature" in rejected[0].body["reason"]


def test_the_run_loop_stops_promptly(hq, spool, tmp_path):
    uplink = make_uplink(hq, spool, tmp_path)
    stop = threading.Event()
    thread = threading.Thread(target=uplink.run, args=(stop,))
    thread.start()
    time.sleep(0.3)
    stop.set()
    thread.join(3)
    assert not thread.is_alive()


def test_an_accepted_heartbeat_and_hq_reachable_are_written_together(hq, spool, tmp_path):
    # The tray reads status between writes; it must never see a fresh heartbeat beside "unreachable".
    hq.then("/v1/heartbeat", Answer(status=500, body={}))
    uplink = make_uplink(hq, spool, tmp_path)
    uplink.step()
    assert StatusFile.read(tmp_path)["hq_reachable"] is False
    seen = []
    update = uplink._status.update

    def recording_update(**fields):
        update(**fields)
        seen.append(StatusFile.read(tmp_path))

    uplink._status.update = recording_update
    uplink.step()
    with_heartbeat = [s for s in seen if s.get("last_heartbeat")]
    assert with_heartbeat and all(s["hq_reachable"] for s in with_heartbeat)
