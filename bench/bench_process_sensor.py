"""Process sensor cost and latency, against a full process-table re-read in the same run.

    .venv/bin/python bench/bench_process_sensor.py [--procs 400] [--ticks 200] [--starts 200]

1. Starts ``--procs`` idle processes (copies of sleep), so the table looks like a busy outlet PC.
2. CPU per tick (time.process_time) of ``ProcessSensor.poll()`` listing pids on that idle table
   versus a full ``psutil.process_iter`` re-read of the same fields, back to back; then each
   running as a real thread at 10 Hz for ``--soak`` seconds (share of a core, with the cold
   caches and wake-ups of a real 100 ms cadence), the sensor both with and without the Linux
   last-pid hint. The hint only helps while nothing on the machine forks or starts threads, so
   on a busy machine it lists on most ticks; the count of ticks that listed is printed.
3. Detection latency: with the sensor thread at its default interval, ``--starts`` processes are
   started one at a time at random phases of the tick; latency is from just before Popen to the
   sensor's callback. Prints p50 / p95 / max.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from agent.sensors.observations import ProcessStarted
from agent.sensors.pid_hint import LastPidHint
from agent.sensors.process import ProcessSensor
from agent.sensors.procinfo import ATTRS
from agent.sensors.worker import PollingWorker

SLEEP = shutil.which("sleep") or "/bin/sleep"


def start_idle(count: int, workdir: Path) -> list[subprocess.Popen[bytes]]:
    idle = workdir / "OutletIdle"
    shutil.copy2(SLEEP, idle)
    procs = [subprocess.Popen([str(idle), "3600"]) for _ in range(count)]
    time.sleep(0.5)
    return procs


def cpu_per_tick(tick: object, ticks: int) -> float:
    assert callable(tick)
    tick()  # warm caches the same way for both
    start = time.process_time()
    for _ in range(ticks):
        tick()
    return (time.process_time() - start) / ticks


def full_rescan() -> None:
    for _ in psutil.process_iter(attrs=ATTRS, ad_value=None):
        pass


def no_hint() -> LastPidHint:
    return LastPidHint(platform_name="none")  # always "maybe": list pids on every tick


def measure_cost(ticks: int, interval_s: float) -> None:
    sensor = ProcessSensor(lambda _e: None, pid_hint=no_hint())
    sensor.prime()
    table = len(psutil.pids())
    sensor_cpu = cpu_per_tick(sensor.poll, ticks)
    rescan_cpu = cpu_per_tick(full_rescan, ticks)
    hz = 1 / interval_s
    print(f"process table: {table} processes; back-to-back ticks (warm caches), {ticks} each")
    for label, cost in (("sensor tick, pid listing", sensor_cpu), ("full process_iter re-read", rescan_cpu)):
        print(f"  {label + ':':28}{cost * 1e3:8.3f} ms CPU = {cost * hz * 100:6.2f}% of a core at {hz:g} Hz")
    print(f"  ratio (re-read / sensor):   {rescan_cpu / sensor_cpu:8.1f}x")


def threaded_share(tick: object, seconds: float, interval_s: float) -> float:
    """Share of one core the process uses while a PollingWorker runs ``tick`` for ``seconds``."""
    assert callable(tick)
    worker = PollingWorker("bench-worker", interval_s, tick)
    cpu, wall = time.process_time(), time.monotonic()
    worker.start()
    time.sleep(seconds)
    worker.stop()
    return (time.process_time() - cpu) / (time.monotonic() - wall)


def measure_threaded(seconds: float, interval_s: float) -> None:
    print(f"as running threads at {1 / interval_s:g} Hz, {seconds:g} s each (cold caches, wake-ups included):")
    rescan = threaded_share(full_rescan, seconds, interval_s)
    print(f"  full process_iter re-read:  {rescan * 100:6.2f}% of a core")
    for label, hint in (("sensor, pid listing", no_hint()), ("sensor, listing + pid hint", LastPidHint())):
        sensor = ProcessSensor(lambda _e: None, interval_s=interval_s, pid_hint=hint)
        sensor.prime()
        share = threaded_share(sensor.poll, seconds, interval_s)
        ticks = max(1, round(seconds / interval_s))
        print(
            f"  {label + ':':28}{share * 100:6.2f}% of a core (ratio {rescan / share:6.1f}x;"
            f" listed pids on {min(sensor.listings, ticks)}/{ticks} ticks)"
        )


def measure_latency(starts: int, workdir: Path) -> None:
    tool = workdir / "chromedriver"
    shutil.copy2(SLEEP, tool)
    arrived: dict[int, float] = {}
    cond = threading.Condition()

    def out(event: ProcessStarted) -> None:
        if event.process.exe == str(tool):
            with cond:
                arrived[event.process.pid] = time.monotonic()
                cond.notify_all()

    sensor = ProcessSensor(out)
    sensor.start()
    latencies: list[float] = []
    missed = 0
    try:
        for _ in range(starts):
            before = time.monotonic()
            proc = subprocess.Popen([str(tool), "600"])
            pid = proc.pid
            with cond:
                if cond.wait_for(lambda pid=pid: pid in arrived, timeout=2.0):  # type: ignore[misc]
                    latencies.append(arrived[pid] - before)
                else:
                    missed += 1
            proc.kill()
            proc.wait()
            time.sleep(random.uniform(0.0, 0.1))
    finally:
        sensor.stop()
    latencies.sort()
    p95 = latencies[max(0, int(0.95 * len(latencies)) - 1)]
    print(
        f"detection latency over {len(latencies)} starts (missed {missed}): "
        f"p50 {statistics.median(latencies) * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms, max {latencies[-1] * 1e3:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--procs", type=int, default=400, help="idle processes to add to the table")
    parser.add_argument("--ticks", type=int, default=200, help="ticks to time for each method")
    parser.add_argument("--starts", type=int, default=200, help="process starts for the latency run")
    parser.add_argument("--soak", type=float, default=5.0, help="seconds to run each method as a thread")
    parser.add_argument("--interval", type=float, default=0.1, help="sensor interval for the %% of a core")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tg-bench-") as tmp:
        idle = start_idle(args.procs, Path(tmp))
        try:
            measure_cost(args.ticks, args.interval)
            measure_threaded(args.soak, args.interval)
            measure_latency(args.starts, Path(tmp))
        finally:
            for proc in idle:
                proc.kill()
            for proc in idle:
                proc.wait()
    print(f"cpus: {os.cpu_count()}, psutil {psutil.__version__}, python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
