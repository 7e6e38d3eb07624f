"""Redaction cost: `agent.redact.redact` on the text fields of process findings, against copying the
same strings in the same run (a concatenation allocates and copies each one), so the ratio does not
depend on the machine.

The strings are those a process finding carries (name, executable, command line, parent name and
executable) of the generated event stream of bench_rules.py (ordinary outlet work, a few tools);
``--pii`` of the command lines get generated customer values appended (phones in several written
forms, ID numbers, waybill numbers, e-mail addresses, a file named after a customer). Reported: the
time per string and per process of both, the ratio, the same for the strings with and without
personal data, and one JSON line. Generated data only; a few seconds.

    .venv/bin/python bench/bench_redact.py [--events 5000] [--pii 0.1] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "agent" / "exports"))

from bench_rules import events  # noqa: E402
from exports_fakedata import Generator  # noqa: E402

from agent.findings import process_finding_fields  # noqa: E402
from agent.redact import redact  # noqa: E402
from agent.sensors.observations import ProcessInfo, ProcessStarted  # noqa: E402

T = TypeVar("T")


def with_customer_data(event: ProcessStarted, gen: Generator, rng: random.Random) -> ProcessStarted:
    phone = gen.mobile()
    extra = rng.choice([
        ("--phone", f"+86 {phone[:3]}-{phone[3:7]}-{phone[7:]}", "--id", gen.id_number()),
        ("--waybill", gen.waybill(), "--notify", f"{gen.mobile()}@qq.com"),
        (f"--out=C:\\Users\\clerk\\Desktop\\客户{phone}.xlsx",),
        ("--to", gen.address(), "--tel", phone),
    ])
    proc = event.process
    info = ProcessInfo(pid=proc.pid, name=proc.name, ppid=proc.ppid, exe=proc.exe, cmdline=(*proc.cmdline, *extra),
                       user=proc.user, exe_sha256=proc.exe_sha256)
    return ProcessStarted(process=info, parent=event.parent, observed_at=event.observed_at)


def texts_of(event: ProcessStarted) -> list[str]:
    proc, parent = event.process, event.parent
    found = [proc.name, proc.exe, proc.command_line]
    if parent is not None:
        found += [parent.name, parent.exe]
    return [text for text in found if text is not None]


def per_item(work: Callable[[T], object], items: Sequence[T], rounds: int) -> float:
    """Best of ``rounds`` passes, seconds per item."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for item in items:
            work(item)
        best = min(best, time.perf_counter() - started)
    return best / len(items)


def copy(text: str) -> str:
    return text + " "


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--pii", type=float, default=0.1, help="share of command lines given customer values")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    began = time.perf_counter()
    rng = random.Random(3)
    gen = Generator(seed=3)
    stream = [with_customer_data(e, gen, rng) if rng.random() < args.pii else e for e in events(args.events)]
    texts = [text for event in stream for text in texts_of(event)]
    dirty = [text for text in texts if redact(text) != text]
    clean = [text for text in texts if redact(text) == text]
    per_copy = per_item(copy, texts, args.rounds)
    per_redact = per_item(redact, texts, args.rounds)
    clean_ratio = per_item(redact, clean, args.rounds) / per_item(copy, clean, args.rounds)
    dirty_ratio = per_item(redact, dirty, args.rounds) / per_item(copy, dirty, args.rounds)
    best_fields = per_item(lambda e: process_finding_fields(e.process, e.parent), stream, args.rounds)
    ratio = per_redact / per_copy
    print(f"strings: {len(texts)} from {len(stream)} processes ({len(dirty)} with customer data)")
    print(f"copy:               {per_copy * 1e6:8.3f} us/string")
    print(f"redact:             {per_redact * 1e6:8.3f} us/string")
    print(f"ratio redact/copy:  {ratio:8.1f}   (clean strings {clean_ratio:.1f}, with customer data "
          f"{dirty_ratio:.1f})")
    print(f"finding fields:     {best_fields * 1e6:8.2f} us/process (process_finding_fields, all five texts)")
    print(json.dumps({"bench": "redact", "strings": len(texts), "processes": len(stream), "with_pii": len(dirty),
                      "copy_us": round(per_copy * 1e6, 4), "redact_us": round(per_redact * 1e6, 3),
                      "ratio": round(ratio, 2), "clean_ratio": round(clean_ratio, 2),
                      "pii_ratio": round(dirty_ratio, 2), "fields_us_per_process": round(best_fields * 1e6, 2),
                      "elapsed_s": round(time.perf_counter() - began, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
