"""Export-scan throughput: scan_file on a generated ~20 MB waybill CSV against reading + SHA-256 of
the same file in the same run (the floor any scanner pays) and against ripgrep counting lines with
a mainland mobile number (`rg -c`, the issue's yardstick; Debian's `ripgrep`, skipped with a note
when it is not installed). scan_file runs twice: as the agent runs it (rows after the critical
verdict sampled, agent/exports/sampling.py) and with every row counted (`scan --exact`).
Prints each, the ratios, the peak RSS
growth of the scan, the time from closing a generated 10 MB export in a watched folder to its
finding (real ExportSensor + scan_file), and one JSON line. Generated data only; about a minute
at most.

    .venv/bin/python bench/bench_exports.py [--mb 20] [--latency-mb 10]   (--mb 200: the issue's size)
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import queue
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "agent" / "exports"))

from exports_fakedata import HEADER, Generator  # noqa: E402

from agent.exports.sampling import EXACT  # noqa: E402
from agent.exports.scan import scan_file  # noqa: E402
from agent.exports.sensor import ExportSensor  # noqa: E402
from agent.exports.volumes import FakeVolumes  # noqa: E402
from agent.sensors.observations import FileWritten  # noqa: E402

BUDGET_S = 60.0


def generate(path: Path, target_bytes: int) -> int:
    """Streams rows to disk; names come from a pool so Faker does not dominate the run."""
    gen = Generator(seed=2024)
    names = [gen.name() for _ in range(3000)]
    rng = random.Random(1)
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        while handle.tell() < target_bytes:
            for _ in range(1000):
                writer.writerow([gen.waybill(), rng.choice(names), gen.mobile(), gen.address(), rng.choice(names),
                                 gen.mobile(), gen.address(), f"{rng.uniform(0.1, 30):.2f}",
                                 f"{rng.uniform(8, 90):.2f}"])
            rows += 1000
    return rows


def baseline(path: Path) -> float:
    started = time.perf_counter()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return time.perf_counter() - started


# The same shape as agent/exports/patterns.MOBILE (segments, no letter or digit around), in
# ripgrep's syntax: what a hand-rolled `rg` search for customer phone numbers would run.
RG_MOBILE = r"(?:^|[^0-9A-Za-z])1(?:3\d|4[5-9]|5[0-35-9]|6[25-7]|7[0-8]|8\d|9[0-35-9])\d{8}(?:[^0-9A-Za-z]|$)"


def ripgrep(path: Path) -> float | None:
    """Seconds for `rg -c` with the mobile regex (best of three), or None without ripgrep."""
    rg = shutil.which("rg")
    if rg is None:
        return None
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([rg, "-c", RG_MOBILE, str(path)], check=True, capture_output=True)
        best = min(best, time.perf_counter() - started)
    return best


def close_to_finding(tmp: Path, megabytes: float) -> float:
    """Seconds from closing an export in a watched folder to its finding (sensor settle + scan)."""
    source = tmp / "source.csv"
    generate(source, int(megabytes * 1e6))
    data = source.read_bytes()
    watched = tmp / "Downloads"
    watched.mkdir()
    out: queue.Queue[FileWritten] = queue.Queue()
    sensor = ExportSensor([watched], out, volumes=FakeVolumes())
    sensor.start()
    try:
        with (watched / "export.csv").open("wb") as handle:
            handle.write(data)
        closed = time.perf_counter()
        observation = out.get(timeout=30)
        finding = scan_file(Path(observation.path))
        elapsed = time.perf_counter() - closed
    finally:
        sensor.stop()
    if finding is None:
        raise RuntimeError("the watched export gave no finding")
    return elapsed


def sensor_mode() -> str:
    probe = ExportSensor([], queue.Queue(), volumes=FakeVolumes())
    probe.start()
    probe.stop()
    return probe.mode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20.0, help="size of the generated CSV in MB")
    parser.add_argument("--latency-mb", type=float, default=10.0, help="size of the export for the latency run")
    args = parser.parse_args()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tg-bench-exports-") as tmp:
        path = Path(tmp) / "waybills.csv"
        rows = generate(path, int(args.mb * 1e6))
        size_mb = path.stat().st_size / 1e6
        baseline(path)  # warm the page cache so both runs read from memory
        base_s = min(baseline(path) for _ in range(3))
        rg_s = ripgrep(path)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        scan_started = time.perf_counter()
        finding = scan_file(path)
        scan_s = time.perf_counter() - scan_started
        rss_growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
        exact_started = time.perf_counter()
        exact = scan_file(path, sampling=EXACT)
        exact_s = time.perf_counter() - exact_started
        latency_s = close_to_finding(Path(tmp), args.latency_mb)
    if any(result is None or result.severity != "critical" for result in (finding, exact)):
        print("error: the generated export did not give a critical finding", file=sys.stderr)
        return 2
    scan_rate, base_rate, exact_rate = size_mb / scan_s, size_mb / base_s, size_mb / exact_s
    sampled = bool(finding is not None and finding.fields.get("scan.sampled"))
    print(f"file: {size_mb:.1f} MB, {rows} rows")
    print(f"scan_file:        {scan_rate:8.1f} MB/s ({scan_s:.2f} s){'  sampled after the verdict' if sampled else ''}")
    print(f"scan_file exact:  {exact_rate:8.1f} MB/s ({exact_s:.2f} s)  every row counted")
    print(f"read + sha256:    {base_rate:8.1f} MB/s ({base_s:.3f} s)")
    print(f"ratio scan/base:  {scan_rate / base_rate:8.4f}")
    rg_rate = size_mb / rg_s if rg_s else None
    if rg_rate is None:
        print("ripgrep:          not installed (apt-get install ripgrep); no ratio against it")
    else:
        print(f"rg -c mobile:     {rg_rate:8.1f} MB/s ({rg_s:.3f} s)")
        print(f"ratio scan/rg:    {scan_rate / rg_rate:8.4f}   (issue 4 target: >= 0.25)")
        print(f"ratio exact/rg:   {exact_rate / rg_rate:8.4f}")
    print(f"peak RSS growth:  {rss_growth_mb:8.1f} MB")
    print(f"close -> finding: {latency_s:8.2f} s for a {args.latency_mb:g} MB export (sensor: {sensor_mode()})")
    print(json.dumps({"bench": "exports", "file_mb": round(size_mb, 2), "rows": rows,
                      "scan_mb_s": round(scan_rate, 2), "baseline_mb_s": round(base_rate, 1),
                      "ratio": round(scan_rate / base_rate, 5),
                      "rg_mb_s": round(rg_rate, 1) if rg_rate else None,
                      "ratio_rg": round(scan_rate / rg_rate, 5) if rg_rate else None, "sampled": sampled,
                      "exact_mb_s": round(exact_rate, 2),
                      "ratio_rg_exact": round(exact_rate / rg_rate, 5) if rg_rate else None,
                      "rss_growth_mb": round(rss_growth_mb, 1),
                      "close_to_finding_s": round(latency_s, 2), "latency_mb": args.latency_mb,
                      "elapsed_s": round(time.perf_counter() - began, 1), "budget_s": BUDGET_S}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
