"""Names an attacker controls — file names in a watched folder, process command lines, what a
device puts in its reports — with path traversal, NUL, ANSI escapes, C1 controls, invalid UTF-8.

They must be stored exactly as reported (HQ is evidence, not a sanitiser; NUL, which no database
column takes, is test_hostile_input.py's business), must never stop a
finding from reaching HQ, and must be rendered harmless wherever a person reads them: the HQ
CLI's text output and the agent's `scan` output carry no raw control character that a terminal
would act on.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.events import Event
from tests.agent.exports.exports_fakedata import HEADER, Generator, write_csv
from tests.agent.sensors.conftest import build_sleeper
from tests.agent_process import AgentProcess, wait_until
from tests.hq.device_client import DeviceClient, pinned_client
from tests.hq_server import HqServer

# C0 controls but tab and newline (which the CLI never prints inside a field anyway), DEL, C1.
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
HOSTILE = [
    "../../../../etc/passwd",
    "..\\..\\Windows\\System32\\config\\SAM",
    "C:\\Users\\staff\\Downloads\\export.csv    .exe",
    "\x1b[2J\x1b[31mALL CLEAR\x1b[0m.csv",
    "\x1b]0;owned\x07title.csv",
    "\x9b31mc1-csi.csv",
    "del\x7f.csv",
    "line\nbreak\rreturn.csv",
    "waybills\u202eslx.exe",
]


def cli_json(hq: HqServer, *args: str) -> list[dict]:
    done = hq.cli(*args, "--json")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def raw_controls(text: str) -> list[str]:
    """Control characters a terminal acts on, ignoring the newline that ends each line."""
    return sorted({repr(c) for line in text.split("\n") for c in RAW_CONTROL.findall(line)})


@pytest.fixture
def device(hq_process: HqServer):
    with pinned_client(hq_process.url, str(hq_process.ca_file)) as http:
        device = DeviceClient(http)
        token = hq_process.cli("token", "create", "--outlet", "outlet-hostile").stdout.strip().splitlines()[-1]
        assert device.enroll(token, hostname="pc-\x1b[5mblink\x1b[0m\x9b2J").status_code == 200
        yield device


def test_hostile_names_reported_by_a_device_are_stored_verbatim_and_printed_harmlessly(hq_process, device):
    events = [Event("finding", {"rule": "export.bulk_customer_data", "category": "export", "file.path": name,
                                "process.name": name[:40]}) for name in HOSTILE]
    events.append(Event("x\x1b[8mhidden\x1b[0m\x9b", {"note": "a kind with escapes"}))
    assert device.send_events(events).status_code == 200
    assert device.heartbeat(hostname="pc-\x1b[31mred", staff="S\x1b[0m1", os_users=["u\x9b1"],
                            lost_events={"spool_full\x1b[2J": 1}).status_code == 200

    stored = {e["body"].get("file.path") for e in cli_json(hq_process, "events", "--device", device.device_id)}
    assert set(HOSTILE) <= stored, "a hostile file name was changed on its way into HQ"

    problems = {}
    wait_until(lambda: cli_json(hq_process, "devices")[0]["heartbeat_count"] >= 1, 20, what="the heartbeat flushed")
    for command in (("events",), ("devices",), ("audit",)):
        done = hq_process.cli(*command)
        assert done.returncode == 0, done.stderr
        found = raw_controls(done.stdout)
        if found:
            problems[" ".join(command)] = found
    assert not problems, f"raw control characters reach the operator's terminal: {problems}"


def test_an_unsigned_request_claiming_an_escape_laden_device_id_is_audited_harmlessly(hq_process, device):
    with pinned_client(hq_process.url, str(hq_process.ca_file)) as http:
        for claimed in ("dev\x1b[31m", "dev\x9bX", "dev\x7f"):
            headers = {"X-TG-Device": claimed, "X-TG-Timestamp": "1", "X-TG-Nonce": "n" * 16, "X-TG-Seq": "1",
                       "X-TG-Signature": "AAAA"}
            try:
                response = http.post("/v1/heartbeat", content=b"{}", headers=headers)
            except Exception as exc:  # the client library may refuse to send it; then the server never saw it
                print(f"[abuse] client refused to send X-TG-Device={claimed!r}: {exc}")
                continue
            assert response.status_code in (400, 401), response.text
    done = hq_process.cli("audit")
    assert done.returncode == 0 and not raw_controls(done.stdout), raw_controls(done.stdout)


# -- through the real agent -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sleeper(tmp_path_factory) -> Path:
    return build_sleeper(tmp_path_factory.mktemp("sleeper"))


def test_hostile_file_names_and_command_lines_still_reach_hq_from_a_real_agent(hq_process, sleeper, tmp_path):
    watched = tmp_path / "Downloads"
    watched.mkdir()
    token = hq_process.cli("token", "create", "--outlet", "o-names").stdout.strip().splitlines()[-1]
    agent = AgentProcess(tmp_path / "pc", extra_config=f'\n[exports]\nfolders = ["{watched}"]\n')
    agent.enroll(hq_process.url, token, hq_process.ca_file)
    # Linux file names may hold anything but "/" and NUL: escapes, newlines, backslashes, bytes
    # that are not UTF-8 (a USB stick from a GBK PC) — and a tool's command line may too.
    names = [b"\x1b[2J\x1b[31mok\x1b[0m.csv", b"..\\..\\Windows\\evil\nname.csv", b"gbk-\xb5\xbc\xb3\xf6.csv",
             b"bad-utf8-\xff\xfe.csv"]
    tool = tmp_path / "opt" / "webdriver" / "chromedriver"
    tool.parent.mkdir(parents=True)
    shutil.copy(sleeper, tool)
    agent.start()
    proc = None
    try:
        wait_until(lambda: agent.status()["exports_mode"], 30, what="export sensor up")
        for seed, name in enumerate(names):
            # Different contents: the agent reports one finding per distinct file hash.
            write_csv(Path(os.fsdecode(bytes(watched) + b"/" + name)),
                      [HEADER, *Generator(seed=21 + seed).waybill_rows(150)])
        proc = subprocess.Popen([str(tool), "--port=9515", os.fsdecode(b"--user-data-dir=/tmp/\xff\xfe-profile")])

        def findings() -> list[dict]:
            return [e["body"] for e in cli_json(hq_process, "events", "--kind", "finding")]

        def all_in() -> bool:
            bodies = findings()
            exports = [b for b in bodies if b["category"] == "export" and str(watched) in b["file.path"]]
            ours = [b for b in bodies if b["category"] == "automation" and b["process.executable"] == str(tool)]
            return len(exports) >= len(names) and bool(ours)

        try:
            wait_until(all_in, 60, interval=1.0, what="every export finding and the webdriver finding at HQ")
        except AssertionError:
            got = [(b["category"], b.get("file.path") or b.get("process.command_line")) for b in findings()
                   if str(tmp_path) in (b.get("file.path") or b.get("process.executable") or "")]
            crashes = [line["msg"] for line in agent.log_lines() if "failed; restarting" in line.get("msg", "")]
            raise AssertionError(f"missing findings; HQ has {got}; agent worker crashes: {crashes}") from None
        paths = [b["file.path"] for b in findings() if b["category"] == "export"]
        assert any("\x1b[2J" in p for p in paths), "the escape sequence in a file name was not kept verbatim"
        done = hq_process.cli("events")
        assert done.returncode == 0 and not raw_controls(done.stdout), raw_controls(done.stdout)
    finally:
        if proc is not None:
            proc.kill()
            proc.wait(10)
        agent.stop()

    scan = subprocess.run([sys.executable, "-m", "agent.cli", "--config", "/dev/null", "scan", "--files",
                           str(watched)], capture_output=True, text=True, timeout=120)
    assert scan.returncode == 1, scan.stderr
    assert not raw_controls(scan.stdout + scan.stderr), \
        f"`terminal-guard scan` prints raw control characters: {raw_controls(scan.stdout + scan.stderr)}"
