"""Agent service idle cost: RSS and CPU over 60 s with 10 s heartbeats to a real HQ on loopback.

Baseline measured in the same run, the same way: a bare Python interpreter that only sleeps.
Targets (issue 2): RSS <= 45 MB and CPU <= 0.5 % of one core.

"Idle" is the agent's idle: the machine around it may not be. Every process that starts is read,
hashed and judged, as it must be, so the processes started by others during the measurement
are counted and printed next to the CPU figure.

    .venv/bin/python bench/bench_agent_idle.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.agent_process import AgentProcess, wait_until  # noqa: E402
from tests.hq_server import HqServer  # noqa: E402


def sample(proc: psutil.Process, seconds: float) -> dict[str, float]:
    cpu_before = proc.cpu_times()
    rss = []
    known = set(psutil.pids())
    started = 0  # processes that appeared meanwhile (short-lived ones between samples are missed)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rss.append(proc.memory_info().rss)
        time.sleep(1)
        current = set(psutil.pids())
        started += len(current - known)
        known = current
    cpu_after = proc.cpu_times()
    cpu_s = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    return {"rss_mb": max(rss) / 2**20, "cpu_percent": 100 * cpu_s / seconds,
            "processes_started_per_s": round(started / seconds, 2)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, HqServer(data_dir=Path(tmp) / "hq") as hq:
        token = hq.cli("token", "create", "--outlet", "bench").stdout.strip().splitlines()[-1]
        agent = AgentProcess(Path(tmp) / "pc", heartbeat_interval_s=10, backoff_max_s=60)
        agent.config.write_text(agent.config.read_text().replace('level = "DEBUG"', 'level = "INFO"'))
        agent.enroll(hq.url, token, hq.ca_file)
        agent.start()
        baseline = psutil.Popen([sys.executable, "-c", "import time; time.sleep(100000)"])
        try:
            wait_until(lambda: agent.status()["last_heartbeat"], 30, what="first heartbeat")
            time.sleep(5)  # let start-up work settle
            assert agent.proc is not None
            measured = sample(psutil.Process(agent.proc.pid), args.seconds)
            base = sample(psutil.Process(baseline.pid), min(args.seconds, 10))
        finally:
            agent.stop()
            baseline.kill()
    ratio = measured["rss_mb"] / base["rss_mb"]
    print(f"agent idle: RSS {measured['rss_mb']:.1f} MB, CPU {measured['cpu_percent']:.3f} % of one core "
          f"over {args.seconds:.0f} s ({measured['processes_started_per_s']:.1f} processes/s started meanwhile)")
    print(f"bare python: RSS {base['rss_mb']:.1f} MB, CPU {base['cpu_percent']:.3f} %")
    print(f"ratio: agent RSS is {ratio:.2f}x a bare interpreter")
    ok = measured["rss_mb"] <= 45 and measured["cpu_percent"] <= 0.5
    print(json.dumps({"bench": "agent_idle", "agent": measured, "baseline": base, "rss_ratio": round(ratio, 2),
                      "targets_met": ok}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
