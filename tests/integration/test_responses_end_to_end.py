"""Policy's per-rule responses in the running agent: a flagged tool is terminated, staff must answer,
repeats fold into one alert with a count, and HQ has the finding, the actions and the outcome."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.agent.sensors.conftest import build_sleeper
from tests.agent_process import AgentProcess, wait_until
from tests.hq_server import HqServer

MITMPROXY_RULE = "a10e8bcb-0608-4f4d-bf37-9b93e6b4797b"  # agent/rules/builtin/tg_proc_interception_mitmproxy.yml


@pytest.fixture
def tool(tmp_path: Path) -> Path:
    where = tmp_path / "opt" / "mitmproxy"
    where.mkdir(parents=True)
    return build_sleeper(where, "mitmdump")


def hq_events(hq: HqServer, kind: str) -> list[dict]:
    done = hq.cli("events", "--json", "--kind", kind, "--limit", "100000")
    assert done.returncode == 0, done.stderr
    return [json.loads(line)["body"] for line in done.stdout.splitlines()]


def test_terminate_and_require_ack_from_policy_and_repeats_folded(tmp_path: Path, tool: Path) -> None:
    from agent.localchannel.client import AgentClient

    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"responses": {"allow_terminate": True,
                                                "rules": {MITMPROXY_RULE: ["terminate", "require_ack"]}}}))
    with HqServer(data_dir=tmp_path / "hq") as hq:
        assert hq.cli("policy", "publish", str(policy)).returncode == 0
        token = hq.cli("token", "create", "--outlet", "o-resp").stdout.strip().splitlines()[-1]
        agent = AgentProcess(tmp_path / "pc")
        agent.enroll(hq.url, token, hq.ca_file)
        agent.start()
        started: list[subprocess.Popen[bytes]] = []
        try:
            wait_until(lambda: agent.status()["policy_version"] == 2, 30, what="the responses policy in force")
            first = subprocess.Popen([str(tool), "--listen-port", "8080"])
            started.append(first)
            wait_until(lambda: first.poll() is not None, 20, what="mitmdump terminated by the agent")
            [outcome] = wait_until(lambda: hq_events(hq, "response.terminated"), 30, what="the outcome at HQ")
            assert outcome["outcome"] == "terminated" and outcome["process.pid"] == first.pid
            assert outcome["rule"] == MITMPROXY_RULE and first.pid in outcome["pids"]
            finding = next(b for b in hq_events(hq, "finding") if b["rule"] == MITMPROXY_RULE)
            assert finding["response.actions"] == ["alert", "terminate", "require_ack"]

            client = AgentClient(str(agent.state_dir / "agent.sock"))
            [alert] = client.call("alerts")["pending"]
            assert alert["rule"] == MITMPROXY_RULE and alert["action"] == "require_ack"
            for _ in range(3):  # relaunched in a loop: terminated each time, one alert with a count
                again = subprocess.Popen([str(tool), "--listen-port", "8080"])
                started.append(again)
                wait_until(lambda again=again: again.poll() is not None, 20, what="a relaunch terminated")
            folded = wait_until(lambda: [a for a in client.call("alerts")["pending"] if a.get("repeats") == 3],
                                20, what="three repeats folded into the alert")
            assert len(client.call("alerts")["pending"]) == 1 and folded[0]["alert_id"] == alert["alert_id"]
            assert len([b for b in hq_events(hq, "finding") if b["rule"] == MITMPROXY_RULE]) == 1
            assert agent.alive()
        finally:
            for proc in started:
                if proc.poll() is None:
                    proc.kill()
            if agent.alive():
                agent.stop()
