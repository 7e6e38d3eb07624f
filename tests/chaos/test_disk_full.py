"""The disk holding the agent's state (spool, logs, status, alerts, sequence file) fills up to the
last byte while exports keep being made: detection goes on, the losses are counted as disk_full
and reported to HQ, the PC does not fall silent, and once space is back the agent recovers by
itself, with no restart.

The folder is a size-limited tmpfs (tests/chaos/small_disk.py), mounted for the test and
unmounted on every exit path. The test collects every broken promise before it fails, so one run
names all of them.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from tests.agent.exports.exports_fakedata import HEADER, Generator, write_csv
from tests.agent_process import AgentProcess, wait_until
from tests.chaos.harness import HqView, Record, running, scaled, token_for, wait_for_heartbeat
from tests.chaos.small_disk import SmallDisk
from tests.hq_server import HqServer

EXPORTS_WHILE_FULL = int(scaled(3, 12))
# Longer than the request sequence's 10 s reservation step, so a reservation falls in the full period.
FULL_FOR_S = scaled(20, 120)


def export_file(folder: Path, name: str, seed: int) -> Path:
    path = folder / name
    write_csv(path, [HEADER, *Generator(seed=seed).waybill_rows(200)])
    return path


def export_findings(view: HqView, device_id: str) -> list[str]:
    return [e["body"]["file.path"] for e in view.events("finding", device_id=device_id)
            if e["body"].get("category") == "export"]


def worker_crashes(agent: AgentProcess) -> list[str]:
    """Names of workers that died and were restarted, from the log file or (when that was full) stderr."""
    names = {line["msg"].split()[1] for line in agent.log_lines()
             if line.get("msg", "").startswith("worker ") and "failed; restarting" in line["msg"]}
    stderr = agent.log_path.read_text("utf-8", errors="replace")
    # A log record the full disk refused is dumped to stderr with its arguments: ('uplink', 5.0).
    names.update(re.findall(r"Message: 'worker %s failed; restarting in %.0f s'\nArguments: \('([\w-]+)'", stderr))
    return sorted(names)


def test_a_full_disk_loses_only_counted_events_and_recovers_by_itself(hq: HqServer, view: HqView, tmp_path):
    watched = tmp_path / "Downloads"
    watched.mkdir()
    agent = AgentProcess(tmp_path / "pc", extra_config=f'\n[exports]\nfolders = ["{watched}"]\n')
    problems: list[str] = []
    with SmallDisk(agent.state_dir, size_mb=24) as disk:
        device_id = agent.enroll(hq.url, token_for(hq), hq.ca_file)["device_id"]
        with running(agent):
            wait_for_heartbeat(view, device_id)
            wait_until(lambda: agent.status()["exports_mode"], 20, what="export sensor up")
            export_file(watched, "before.csv", 1)
            wait_until(lambda: export_findings(view, device_id), 30, what="a finding before the disk fills")

            disk.fill()
            beats_at_full = view.device(device_id)["heartbeat_count"]
            full_at = time.monotonic()
            seen_lost: dict[str, int] = {}
            for n in range(EXPORTS_WHILE_FULL):
                export_file(watched, f"while-full-{n}.csv", 10 + n)
            while time.monotonic() - full_at < FULL_FOR_S:
                for reason, count in (view.device(device_id).get("lost_events") or {}).items():
                    seen_lost[reason] = max(seen_lost.get(reason, 0), count)
                time.sleep(0.2)
            beats_while_full = view.device(device_id)["heartbeat_count"] - beats_at_full
            status = agent.cli("status", "--json")
            if not agent.alive():
                problems.append("the agent died on a full disk")
            if beats_while_full < FULL_FOR_S / 3:
                problems.append(f"only {beats_while_full} heartbeats reached HQ in {FULL_FOR_S:.0f} s of full disk "
                                "(1 s interval): HQ will call the PC silent")
            if status.returncode != 0:
                problems.append(f"`status --json` exits {status.returncode} while the disk is full: "
                                f"{status.stderr.strip().splitlines()[-1] if status.stderr.strip() else ''}")

            disk.free()
            freed = time.monotonic()
            export_file(watched, "after.csv", 99)
            try:
                wait_until(lambda: any(p.endswith("after.csv") for p in export_findings(view, device_id)), 60,
                           what="a finding delivered after space came back")
            except AssertionError as exc:
                problems.append(f"no recovery without a restart: {exc}")
            recovered_s = time.monotonic() - freed
            paths = export_findings(view, device_id)
            if any("while-full" in p for p in paths):
                problems.append("a finding made on a full disk reached HQ, yet it was counted as lost")
            beats = view.device(device_id)["heartbeat_count"]
            wait_for_heartbeat(view, device_id, after=beats + 3)
            kept = view.device(device_id)["lost_events"]
            if kept.get("disk_full", 0) < EXPORTS_WHILE_FULL:
                problems.append(f"HQ keeps lost_events {kept} after later heartbeats (seen at most {seen_lost}); "
                                f"{EXPORTS_WHILE_FULL} findings were lost to the full disk")
            crashes = worker_crashes(agent)
            if crashes:
                problems.append(f"workers crashed on the full disk: {crashes}")
    Record("spool disk full", {"full_for_s": FULL_FOR_S, "exports_while_full": EXPORTS_WHILE_FULL,
                               "heartbeats_while_full": beats_while_full, "max_seen_at_hq": seen_lost,
                               "kept_at_hq": kept, "status_exit": status.returncode,
                               "recovered_after_free_s": round(recovered_s, 1)}).emit()
    assert not problems, "on a full disk:\n- " + "\n- ".join(problems)
