"""A real HQ (uvicorn, HTTPS, SQLite or PostgreSQL) and real agent processes on loopback."""

from __future__ import annotations

import json
import random
import time

import pytest

from agent.events import Event
from tests.agent_process import AgentProcess, wait_until
from tests.hq_server import HqServer


@pytest.fixture
def hq(db_url, tmp_path):
    with HqServer(db_url, data_dir=tmp_path / "hq", extra_args=("--silent-after-s", "5")) as server:
        yield server


def token_for(hq: HqServer, outlet: str = "outlet-7", *extra: str) -> str:
    done = hq.cli("token", "create", "--outlet", outlet, *extra)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def enrolled_agent(hq: HqServer, root, **kw) -> tuple[AgentProcess, str]:
    agent = AgentProcess(root, **kw)
    device_id = agent.enroll(hq.url, token_for(hq), hq.ca_file)["device_id"]
    return agent, device_id


def devices(hq: HqServer) -> dict[str, dict]:
    done = hq.cli("devices", "--json")
    assert done.returncode == 0, done.stderr
    return {d["device_id"]: d for d in map(json.loads, done.stdout.splitlines())}


def stored_events(hq: HqServer, kind: str = "test") -> list[dict]:
    done = hq.cli("events", "--json", "--kind", kind, "--limit", "1000000")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def feed(agent: AgentProcess, count: int, tag: str) -> set[str]:
    events = [Event("test", {"tag": tag, "n": i}) for i in range(count)]
    with agent.spool() as spool:
        spool.put_many(events)
    return {e.id for e in events}


def assert_exactly_once(hq: HqServer, expected: set[str], timeout: float) -> None:
    def all_there():
        return len(stored_events(hq)) >= len(expected)

    wait_until(all_there, timeout, interval=1.0, what=f"{len(expected)} events at HQ")
    ids = [e["event_id"] for e in stored_events(hq)]
    assert len(ids) == len(set(ids)), "an event was stored twice"
    assert set(ids) == expected


def test_an_enrolled_agent_heartbeats_into_devices_within_15_s(hq, tmp_path):
    agent, device_id = enrolled_agent(hq, tmp_path / "pc1")
    agent.start()
    try:
        device = wait_until(lambda: devices(hq).get(device_id, {}).get("heartbeat_count", 0) >= 1 and
                            devices(hq)[device_id], 15, what="first heartbeat at HQ")
        assert device["status"] == "online" and device["outlet_id"] == "outlet-7"
        status = wait_until(lambda: (s := agent.status())["last_heartbeat"] and s, 10, what="agent status")
        assert status["running"] and status["hq_reachable"] and status["enrolled"]
        assert status["policy_version"] == 1
        started = stored_events(hq, "agent.started")
        assert [e["device_id"] for e in started] == [device_id]
    finally:
        agent.stop()


def test_events_spooled_while_hq_is_down_for_60_s_are_stored_exactly_once(hq, tmp_path):
    agent, _ = enrolled_agent(hq, tmp_path / "pc1")
    agent.start()
    try:
        expected = feed(agent, 50, "before")
        assert_exactly_once(hq, expected, 20)
        hq.stop()
        outage_end = time.monotonic() + 60
        while time.monotonic() < outage_end:
            expected |= feed(agent, 25, "during")
            time.sleep(5)
        status = agent.status()
        assert status["hq_reachable"] is False and status["spool_depth"] >= 25 * 12
        assert agent.alive()
        hq.start()
        assert_exactly_once(hq, expected, 60)
        assert wait_until(lambda: agent.status()["spool_depth"] == 0, 20, what="spool drained")
    finally:
        agent.stop()


def test_an_agent_killed_mid_upload_loses_and_duplicates_nothing(hq, tmp_path):
    agent, _ = enrolled_agent(hq, tmp_path / "pc1", batch_size=50)
    expected = feed(agent, 12000, "kill")
    rng = random.Random(5)
    delivered_at_kills = []
    for _ in range(6):
        agent.start()
        time.sleep(rng.uniform(1.5, 3.0))
        agent.kill()
        delivered_at_kills.append(len(stored_events(hq)))
    # The kills landed while uploads were under way, not before the first or after the last batch.
    assert any(0 < n < len(expected) for n in delivered_at_kills), delivered_at_kills
    agent.start()
    try:
        assert_exactly_once(hq, expected, 90)
    finally:
        agent.stop()


def test_a_revoked_device_stops_sending_and_status_says_so(hq, tmp_path):
    agent, device_id = enrolled_agent(hq, tmp_path / "pc1")
    agent.start()
    try:
        wait_until(lambda: devices(hq).get(device_id, {}).get("heartbeat_count", 0) >= 1, 15, what="heartbeat")
        assert hq.cli("revoke", "--device", device_id).returncode == 0
        wait_until(lambda: agent.status()["revoked"], 15, what="agent sees revocation")
        assert devices(hq)[device_id]["status"] == "revoked"
        feed(agent, 5, "after-revoke")
        time.sleep(3)
        assert stored_events(hq) == [] and agent.alive()
        assert agent.status()["spool_depth"] >= 5
    finally:
        agent.stop()


def test_sigterm_stops_promptly_and_hq_hears_agent_stopped(hq, tmp_path):
    agent, device_id = enrolled_agent(hq, tmp_path / "pc1")
    agent.start()
    wait_until(lambda: devices(hq).get(device_id, {}).get("heartbeat_count", 0) >= 1, 15, what="heartbeat")
    started = time.monotonic()
    assert agent.stop(timeout=15) == 0
    assert time.monotonic() - started < 12
    wait_until(lambda: stored_events(hq, "agent.stopped"), 10, what="agent.stopped at HQ")
    assert agent.status()["running"] is False


def test_a_published_policy_reaches_the_running_agent(hq, tmp_path):
    agent, _ = enrolled_agent(hq, tmp_path / "pc1")
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"protected_hosts": ["waybill.example.com"], "approved_programs": ["waybill.exe"]}))
    agent.start()
    try:
        wait_until(lambda: agent.status()["policy_version"] == 1, 15, what="policy 1")
        done = hq.cli("policy", "publish", str(policy))
        assert done.returncode == 0, done.stderr
        wait_until(lambda: agent.status()["policy_version"] == 2, 20, what="policy 2 in force")
        stored = json.loads((agent.state_dir / "policy.json").read_text())
        assert stored["policy"]["body"]["protected_hosts"] == ["waybill.example.com"]
    finally:
        agent.stop()


def test_doctor_passes_every_check_for_an_enrolled_pc(hq, tmp_path):
    agent, _ = enrolled_agent(hq, tmp_path / "pc1")
    done = agent.cli("doctor", "--json")
    checks = {c["check"]: c for c in map(json.loads, done.stdout.splitlines())}
    assert done.returncode == 0, checks
    assert {"config", "state_dir", "keystore", "enrollment", "hq_tls", "hq_auth"} <= set(checks)


def test_a_one_time_token_cannot_enroll_a_second_pc(hq, tmp_path):
    token = token_for(hq)
    AgentProcess(tmp_path / "pc1").enroll(hq.url, token, hq.ca_file)
    second = AgentProcess(tmp_path / "pc2")
    done = second.cli("enroll", "--hq", hq.url, "--token", token, "--ca", str(hq.ca_file))
    assert done.returncode == 2 and "invalid_token" in done.stderr
    assert second.status()["enrolled"] is False
    assert not (second.state_dir / "device-key.pem").exists()


def test_enrolling_against_an_hq_with_another_ca_fails_the_pin(hq, tmp_path):
    with HqServer(data_dir=tmp_path / "other-hq") as other:
        agent = AgentProcess(tmp_path / "pc1")
        done = agent.cli("enroll", "--hq", hq.url, "--token", token_for(hq), "--ca", str(other.ca_file))
    assert done.returncode == 2 and "enrollment" in done.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in done.stderr or "certificate" in done.stderr.lower()


def test_a_preseeded_token_file_enrolls_on_first_start_and_is_deleted(hq, tmp_path):
    token_file = tmp_path / "enroll-token"
    token_file.write_text(token_for(hq, "outlet-9"))
    agent = AgentProcess(tmp_path / "pc1", extra_config="")
    text = agent.config.read_text()
    agent.config.write_text(f'[hq]\nurl = "{hq.url}"\nca_file = "{hq.ca_file}"\n'
                            f'enroll_token_file = "{token_file}"\n\n' + text)
    agent.start()
    try:
        status = wait_until(lambda: (s := agent.status())["enrolled"] and s["last_heartbeat"] and s, 30,
                            what="enrolled from preseed")
        assert status["outlet_id"] == "outlet-9"
        assert not token_file.exists()
    finally:
        agent.stop()


def test_unenroll_tells_hq_and_forgets_the_identity(hq, tmp_path):
    agent, device_id = enrolled_agent(hq, tmp_path / "pc1")
    done = agent.cli("unenroll", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["hq_told"] is True
    assert devices(hq)[device_id]["status"] == "revoked"
    assert agent.status()["enrolled"] is False
    assert not (agent.state_dir / "device-key.pem").exists()


def test_the_tray_client_reads_status_from_the_running_agent(hq, tmp_path):
    from agent.localchannel.client import AgentClient, AgentUnavailable

    agent, device_id = enrolled_agent(hq, tmp_path / "pc1")
    agent.start()
    client = AgentClient(str(agent.state_dir / "agent.sock"))

    def heartbeat_status():
        try:
            status = client.call("status")
        except AgentUnavailable:
            return None  # still starting
        return status if status["last_heartbeat"] else None

    try:
        status = wait_until(heartbeat_status, 15, what="status over the local channel")
        assert status["device_id"] == device_id and status["hq_reachable"] and status["staff"] is None, status
        assert client.call("alerts") == {"pending": [], "past": []}
    finally:
        agent.stop()
