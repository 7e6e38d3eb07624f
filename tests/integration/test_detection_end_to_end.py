"""Real tools' names and command lines, real export files: findings reach HQ, customer data never does."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.agent.exports.exports_fakedata import HEADER, Generator, write_csv
from tests.agent.sensors.conftest import build_sleeper
from tests.agent_process import AgentProcess, wait_until
from tests.hq_server import HqServer


@pytest.fixture(scope="module")
def sleeper(tmp_path_factory) -> Path:
    return build_sleeper(tmp_path_factory.mktemp("sleeper"))


@pytest.fixture(scope="module")
def hq(tmp_path_factory):
    with HqServer(data_dir=tmp_path_factory.mktemp("hq")) as server:
        yield server


def run_tool(sleeper: Path, where: Path, name: str, *args: str) -> subprocess.Popen[bytes]:
    where.mkdir(parents=True, exist_ok=True)
    tool = where / name
    shutil.copy(sleeper, tool)
    return subprocess.Popen([str(tool), *args])


def findings_at(hq: HqServer) -> list[dict]:
    done = hq.cli("events", "--json", "--kind", "finding", "--limit", "100000")
    assert done.returncode == 0, done.stderr
    return [json.loads(line)["body"] for line in done.stdout.splitlines()]


def test_automation_and_remote_tools_and_exports_reach_hq_without_customer_data(hq, sleeper, tmp_path):
    watched = tmp_path / "Downloads"
    watched.mkdir()
    token = hq.cli("token", "create", "--outlet", "o-e2e").stdout.strip().splitlines()[-1]
    agent = AgentProcess(tmp_path / "pc", extra_config=f'\n[exports]\nfolders = ["{watched}"]\n')
    agent.enroll(hq.url, token, hq.ca_file)
    agent.start()
    tools = []
    try:
        wait_until(lambda: agent.status()["last_heartbeat"], 20, what="agent up")
        wait_until(lambda: (agent.state_dir / "status.json").exists() and agent.status()["exports_mode"], 10,
                   what="export sensor up")
        tools.append(run_tool(sleeper, tmp_path / "opt" / "webdriver", "chromedriver", "--port=9515"))
        tools.append(run_tool(sleeper, tmp_path / "opt" / "ToDesk", "ToDesk"))
        generator = Generator(seed=11)
        rows = [HEADER, *generator.waybill_rows(300)]
        write_csv(watched / "export-1123.csv", rows)

        def seen():
            bodies = findings_at(hq)
            categories = {b["category"] for b in bodies}
            return bodies if {"automation", "remote_access", "export"} <= categories else None

        bodies = wait_until(seen, 40, interval=1.0, what="automation, remote_access and export findings at HQ")
        export = next(b for b in bodies if b["category"] == "export")
        assert export["severity"] in ("high", "critical") and export["pii.counts"]["mobile"] >= 300
        assert export["file.path"].endswith("export-1123.csv") and len(export["file.hash.sha256"]) == 64
        driver = next(b for b in bodies if b["category"] == "automation")
        assert driver["process.name"] == "chromedriver" and "--port=9515" in driver["process.command_line"]

        # Privacy: no generated value in HQ's database, the agent's spool or its logs.
        agent.stop()
        values = {cell for row in rows[1:] for cell in row[1:7]}
        places = [hq.data_dir / "hq.sqlite3", agent.state_dir / "spool.sqlite3", *agent.state_dir.glob("logs/*")]
        for place in places:
            blob = place.read_bytes()
            for wal in place.parent.glob(place.name + "-wal"):
                blob += wal.read_bytes()
            leaked = [v for v in values if v.encode("utf-8") in blob]
            assert not leaked, f"{place} holds customer data: {len(leaked)} values"
    finally:
        for tool in tools:
            tool.kill()
        if agent.alive():
            agent.stop()


def test_scan_files_reports_counts_and_exits_1(tmp_path):
    generator = Generator(seed=3)
    rows = [HEADER, *generator.waybill_rows(120)]
    write_csv(tmp_path / "waybills.csv", rows)
    (tmp_path / "prices.csv").write_text("item,price\nbox,3.50\ntape,1.20\n")
    done = subprocess.run([sys.executable, "-m", "agent.cli", "--config", "/dev/null", "scan", "--json",
                           "--files", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    found = [json.loads(line) for line in done.stdout.splitlines()]
    assert [Path(f["file.path"]).name for f in found] == ["waybills.csv"]
    assert found[0]["category"] == "export" and found[0]["rows"] in (120, 121)  # with or without the header
    values = {cell for row in rows[1:] for cell in row[1:7]}
    assert not [v for v in values if v in done.stdout + done.stderr]


def test_scan_files_of_a_missing_path_is_an_error():
    done = subprocess.run([sys.executable, "-m", "agent.cli", "--config", "/dev/null", "scan", "--files",
                           "/nonexistent/x.csv"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "/nonexistent/x.csv" in done.stderr


def test_scan_of_the_running_system_finds_a_traffic_interceptor(sleeper, tmp_path):
    tool = run_tool(sleeper, tmp_path / "bin", "mitmdump", "--listen-port", "8080")
    try:
        done = subprocess.run([sys.executable, "-m", "agent.cli", "--config", "/dev/null", "scan", "--json"],
                              capture_output=True, text=True, timeout=120)
    finally:
        tool.kill()
    assert done.returncode == 1, done.stderr
    found = [json.loads(line) for line in done.stdout.splitlines()]
    assert any(f["category"] == "interception" and f["process.pid"] == tool.pid for f in found)
