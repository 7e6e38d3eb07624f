"""Durable spool writes: put_many in batches of 200 vs one put() (one transaction) per event.

Both run in the same process, on the same kind of temporary directory, against real files with
synchronous=FULL, so the ratio is what batching buys on this machine. Each phase runs for a fixed
time budget and stops early at its event cap, keeping the whole run well under 30 s.

    .venv/bin/python bench/bench_spool.py [--seconds 6] [--batch 200]

The last line of output is one JSON object summarising the run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from agent.events import Event
from agent.spool import Spool

TARGET_BATCHED_PER_S = 20_000


def sample_events(prefix: str) -> Iterator[Event]:
    """Events shaped like real findings (counts, hash, path), no personal data."""
    n = 0
    while True:
        yield Event(
            kind="finding.export",
            priority=n % 4,
            body={
                "rule": "bulk_export_of_customer_data",
                "file": {"path": f"C:\\Users\\outlet\\Desktop\\export_{prefix}_{n}.xlsx", "size": 81920 + n,
                         "hash": {"sha256": f"{n:064x}"}},
                "pii": {"counts": {"mobile": 812, "id_card": 0, "waybill": 400, "address": 396}},
                "rows": 812,
            },
        )
        n += 1


def measure(write: Callable[[Iterator[Event]], int], events: Iterator[Event], seconds: float) -> tuple[int, float]:
    """Call write() until the time budget is spent; return (events written, elapsed seconds)."""
    written = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        written += write(events)
    return written, time.perf_counter() - start


def run(seconds: float, batch: int, directory: Path) -> dict[str, Any]:
    big = 2**31  # no eviction during the benchmark: measure writing, not the bound
    with Spool(directory / "batched.db", max_bytes=big) as spool:
        def batched(events: Iterator[Event]) -> int:
            spool.put_many([next(events) for _ in range(batch)])
            return batch

        batched_n, batched_s = measure(batched, sample_events("b"), seconds)
        assert spool.depth() == batched_n and spool.losses() == {}

    with Spool(directory / "single.db", max_bytes=big) as spool:
        def single(events: Iterator[Event]) -> int:
            spool.put(next(events))
            return 1

        single_n, single_s = measure(single, sample_events("s"), seconds)
        assert spool.depth() == single_n and spool.losses() == {}

    batched_rate = batched_n / batched_s
    single_rate = single_n / single_s
    return {
        "bench": "spool_durable_writes",
        "batch": batch,
        "batched_events": batched_n,
        "batched_events_per_s": round(batched_rate),
        "single_events": single_n,
        "single_events_per_s": round(single_rate),
        "ratio": round(batched_rate / single_rate, 1),
        "target_batched_events_per_s": TARGET_BATCHED_PER_S,
        "meets_target": batched_rate >= TARGET_BATCHED_PER_S,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="time budget per phase (default 6)")
    parser.add_argument("--batch", type=int, default=200, help="events per put_many (default 200)")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.batch <= 0:
        parser.error("--seconds and --batch must be positive")
    with tempfile.TemporaryDirectory(prefix="bench_spool_") as tmp:
        result = run(args.seconds, args.batch, Path(tmp))
    print(f"put_many x{result['batch']}: {result['batched_events_per_s']:>9,} events/s "
          f"({result['batched_events']:,} events)")
    print(f"put per event:   {result['single_events_per_s']:>9,} events/s ({result['single_events']:,} events)")
    print(f"ratio batched/single: {result['ratio']}x; target batched >= {TARGET_BATCHED_PER_S:,}/s: "
          f"{'met' if result['meets_target'] else 'NOT met'}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
