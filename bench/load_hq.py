"""HQ under fleet load: N simulated PCs heartbeating every 10 s against HQ on PostgreSQL, on loopback.

    python bench/load_hq.py [--devices 10000] [--interval 10] [--duration 60] [--warmup 10] [--console-replica]

Starts a throwaway PostgreSQL (tests/pg.py) and a real `terminal-guard-hq serve` on 127.0.0.1,
registers N devices straight into the database (enrollment is not what is measured), lets each
PC make first contact once (HQ reads it from the database), then every device sends a signed
heartbeat every --interval seconds from a random phase, over a pool of
keep-alive TLS connections from a raw asyncio client. A few finding batches per second keep the
alert queue moving. Meanwhile a separate process signed in as an analyst fetches console pages in
turn. Reported: heartbeats/s held against the rate offered, client-side ingest latency (p50/p99),
beats sent late, the console's p95 page time idle (the baseline, measured first) and under load,
and their ratio; one JSON line at the end.

Bounded: loopback only, one first-contact pass plus --warmup + --duration seconds of load (the
run refuses more than 15 minutes),
every loop stops by itself, and the servers are stopped on the way out.

Targets (issue 8): 1,000 heartbeats/s held with console p95 < 500 ms on this 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import multiprocessing
import random
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hq_boot import wait_until_serving  # noqa: E402 - bench/ is sys.path[0] when a bench runs

from agent.events import Event  # noqa: E402
from agent.signing import public_key_text, sign_request  # noqa: E402
from hq.db import Device, make_engine  # noqa: E402
from tests.pg import PostgresServer  # noqa: E402

MAX_TOTAL_S = 900.0
TARGET_HB_PER_S = 1000.0
TARGET_CONSOLE_P95_MS = 500.0
PASSWORD = "load-" + uuid.uuid4().hex
PAGES = ("/console/", "/console/alerts", "/console/devices?status=silent", "/console/devices", "/console/audit")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Hq:
    def __init__(self, db_url: str, data_dir: Path | None = None) -> None:
        self.dir = data_dir or Path(tempfile.mkdtemp(prefix="tg-load-hq-"))
        self.db_url = db_url
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.base = [sys.executable, "-m", "hq.cli", "--db", db_url, "--data-dir", str(self.dir)]
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run([*self.base, *args], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=120)
        if done.returncode != 0:
            raise SystemExit(f"load: {' '.join(args)} failed: {done.stderr}")
        return done.stdout

    def start(self) -> None:
        log = open(self.dir / f"serve-{self.port}.log", "wb")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen([*self.base, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                                     stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        log.close()
        wait_until_serving(self.proc, port=self.port, ca_file=self.dir / "ca.pem",
                           log_file=self.dir / f"serve-{self.port}.log", timeout_s=60, who="load", poll_s=0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class Pc:
    device_id: str
    key: Ed25519PrivateKey
    seq: int = 0


def provision(db_url: str, count: int, outlets: int) -> list[Pc]:
    """N devices written straight into the database, as if each had enrolled."""
    pcs = [Pc(device_id=str(uuid.uuid4()), key=Ed25519PrivateKey.generate()) for _ in range(count)]
    now = time.time()
    rows = [{"id": pc.device_id, "outlet_id": f"O{n % outlets:04d}", "public_key": public_key_text(pc.key),
             "hostname": f"pc-{n:05d}", "os": "Windows 10", "agent_version": "0.1.0", "enrolled_at": now,
             "last_seq": 0, "heartbeat_count": 0, "silent": False} for n, pc in enumerate(pcs)]
    engine = make_engine(db_url)
    with engine.begin() as connection:
        for start in range(0, len(rows), 2000):
            connection.execute(insert(Device), rows[start:start + 2000])
    engine.dispose()
    return pcs


def heartbeat_body() -> bytes:
    return json.dumps({
        "agent_version": "0.1.0", "policy_version": 1, "os_users": ["staff01"], "remote_sessions": [],
        "staff": None, "spool_depth": 0, "lost_events": {}, "clock_offset_s": 0.01, "cpu_percent": 0.4,
        "rss_bytes": 41_000_000, "interval_s": 10.0, "hostname": "pc", "os": "Windows 10",
    }, separators=(",", ":")).encode()


def signed(pc: Pc, path: str, body: bytes) -> bytes:
    pc.seq += 1
    headers = sign_request(pc.key, method="POST", path=path, body=body, device_id=pc.device_id, seq=pc.seq,
                           timestamp=int(time.time()))
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{head}\r\n").encode() + body


@dataclass
class Tally:
    started: float = 0.0
    latencies: list[float] = field(default_factory=list)
    late: int = 0
    ok: int = 0
    refused: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    events_ok: int = 0

    def reset(self) -> None:
        """Forget the warm-up: measuring starts now."""
        self.started = time.monotonic()
        self.latencies, self.late, self.ok, self.refused, self.errors, self.events_ok = [], 0, 0, {}, 0, 0


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return int(head[9:12])


async def connect(port: int, context: ssl.SSLContext) -> Connection:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="127.0.0.1")
    return Connection(reader, writer)


async def drive(hq: Hq, pcs: list[Pc], *, interval: float, warmup: float, duration: float, connections: int,
                events_per_s: float, measuring_started: asyncio.Event) -> tuple[Tally, float]:
    context = ssl.create_default_context(cafile=str(hq.dir / "ca.pem"))
    pool = [await connect(hq.port, context) for _ in range(connections)]
    queue: asyncio.Queue[tuple[float, Pc, str]] = asyncio.Queue(maxsize=connections * 4)
    tally = Tally(started=time.monotonic())
    start = time.monotonic()
    end = start + warmup + duration
    measuring = False

    async def worker(connection: Connection) -> None:
        while True:
            due, pc, kind = await queue.get()
            body = beat_body if kind == "beat" else json.dumps(
                {"events": [Event("finding", {"rule": "load_rule", "title": "load finding", "severity": "medium",
                                              "category": "automation"}, priority=1).to_wire()]}).encode()
            path = "/v1/heartbeat" if kind == "beat" else "/v1/events"
            sent = time.monotonic()
            try:
                status = await connection.exchange(signed(pc, path, body))
            except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
                tally.errors += 1
                queue.task_done()
                connection = await connect(hq.port, context)
                continue
            if kind != "beat":
                queue.task_done()
                tally.events_ok += status == 200
                continue
            queue.task_done()
            tally.latencies.append(time.monotonic() - sent)
            tally.late += sent - due > 1.0
            if status == 200:
                tally.ok += 1
            else:
                tally.refused[status] = tally.refused.get(status, 0) + 1

    beat_body = heartbeat_body()
    workers = [asyncio.create_task(worker(connection)) for connection in pool]
    # First contact: HQ reads each PC from the database once (a real fleet does this over hours
    # of rollout, not in one burst). One beat each, as fast as the pool allows, is not measured.
    first = time.monotonic()
    for pc in pcs:
        await queue.put((time.monotonic(), pc, "beat"))
    await queue.join()
    print(f"first contact of {len(pcs)} PCs: {time.monotonic() - first:.1f} s", flush=True)
    start = time.monotonic()
    end = start + warmup + duration
    tally.reset()
    schedule = [(start + random.uniform(0, interval), n) for n in range(len(pcs))]
    heapq.heapify(schedule)
    next_event = start
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if not measuring and now >= start + warmup:
            measuring = True
            tally.reset()
            measuring_started.set()
        while schedule and schedule[0][0] <= now:
            due, n = heapq.heappop(schedule)
            await queue.put((due, pcs[n], "beat"))
            heapq.heappush(schedule, (due + interval, n))
        if events_per_s and now >= next_event:
            await queue.put((now, random.choice(pcs), "events"))
            next_event = now + 1.0 / events_per_s
        await asyncio.sleep(0.005)
    measured_s = time.monotonic() - tally.started
    for task in workers:
        task.cancel()
    for connection in pool:
        connection.writer.close()
    return tally, measured_s


def page_key(path: str) -> str:
    """/console/devices/<id> for every PC page, so per-page statistics group them."""
    return "/console/devices/<id>" if path.startswith("/console/devices/") else path


def console_probe(url: str, ca: str, device_page: str, seconds: float, results: Any) -> None:
    """In its own process, so the load generator's CPU does not slow the measurement down."""
    import httpx

    times: list[tuple[str, float]] = []
    with httpx.Client(base_url=url, verify=ssl.create_default_context(cafile=ca), timeout=30,
                      follow_redirects=True) as client:
        page = client.get("/console/login")
        token = re.search(r'name="login_token" value="([^"]+)"', page.text)
        assert token, page.text
        signed_in = client.post("/console/login", data={"login_token": token.group(1), "next": "/console/",
                                                         "analyst_id": "loadprobe", "password": PASSWORD})
        assert signed_in.status_code == 200 and "Fleet" in signed_in.text, signed_in.status_code
        paths = [*PAGES, device_page]
        for path in paths:  # one untimed pass: templates compiled, connections pooled
            client.get(path)
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline:
            started = time.monotonic()
            response = client.get(paths[n % len(paths)])
            times.append((page_key(paths[n % len(paths)]), time.monotonic() - started))
            assert response.status_code == 200, (paths[n % len(paths)], response.status_code)
            n += 1
            time.sleep(0.25)
    results.put(times)


def probe(hq: Hq, device_id: str, seconds: float) -> multiprocessing.Process:
    queue: Any = multiprocessing.Queue()
    process = multiprocessing.Process(target=console_probe, args=(hq.url, str(hq.dir / "ca.pem"),
                                                                  f"/console/devices/{device_id}", seconds, queue))
    process.start()
    process.results = queue  # type: ignore[attr-defined]
    return process


def collect(process: multiprocessing.Process) -> list[tuple[str, float]]:
    import queue

    deadline = time.monotonic() + MAX_TOTAL_S
    while time.monotonic() < deadline:
        try:
            times: list[tuple[str, float]] = process.results.get(timeout=1)  # type: ignore[attr-defined]
        except queue.Empty:
            if not process.is_alive():
                raise SystemExit(f"load: the console probe died (exit code {process.exitcode})") from None
            continue
        process.join(30)
        return times
    process.kill()
    raise SystemExit("load: the console probe did not finish")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds (after the warm-up)")
    parser.add_argument("--warmup", type=float, default=10.0,
                        help="seconds of scheduled beats before measuring (after one first-contact beat per PC)")
    parser.add_argument("--connections", type=int, default=48)
    parser.add_argument("--outlets", type=int, default=1000)
    parser.add_argument("--events-per-s", type=float, default=2.0)
    parser.add_argument("--baseline-s", type=float, default=15.0, help="idle console measurement")
    parser.add_argument("--console-replica", action="store_true",
                        help="serve the console from a second HQ process on the same database (a replica "
                        "behind a load balancer that sends analysts there), instead of the one taking heartbeats")
    args = parser.parse_args()
    if not 0 < args.duration + args.warmup + args.baseline_s <= MAX_TOTAL_S:
        raise SystemExit(f"load: warm-up + duration + baseline must be within {MAX_TOTAL_S:.0f} s")

    pg = PostgresServer().start()
    db_url = pg.create_database()
    hq = Hq(db_url)
    replica: Hq | None = None
    try:
        hq.cli("migrate")
        hq.cli("analyst", "add", "--id", "loadprobe", "--role", "viewer", stdin=PASSWORD + "\n")
        started = time.monotonic()
        pcs = provision(db_url, args.devices, args.outlets)
        print(f"provisioned {len(pcs)} PCs in {args.outlets} outlets in {time.monotonic() - started:.1f} s",
              flush=True)
        hq.start()
        assert hq.proc is not None
        server = psutil.Process(hq.proc.pid)
        console_hq = hq
        if args.console_replica:
            replica = console_hq = Hq(db_url, data_dir=hq.dir)
            replica.start()

        idle_pages = collect(probe(console_hq, pcs[0].device_id, args.baseline_s))
        idle = [t for _, t in idle_pages]
        print(f"console idle: {len(idle)} pages, p50 {percentile(idle, 0.5) * 1000:.0f} ms, "
              f"p95 {percentile(idle, 0.95) * 1000:.0f} ms", flush=True)

        prober: multiprocessing.Process | None = None
        cpu: dict[str, float] = {}

        async def run() -> tuple[Tally, float]:
            nonlocal prober
            measuring = asyncio.Event()
            task = asyncio.create_task(drive(hq, pcs, interval=args.interval, warmup=args.warmup,
                                             duration=args.duration, connections=args.connections,
                                             events_per_s=args.events_per_s, measuring_started=measuring))
            await measuring.wait()
            prober = probe(console_hq, pcs[1].device_id, args.duration - 2)
            me = psutil.Process()
            cpu_before, own_before = server.cpu_times(), me.cpu_times()
            result = await task
            cpu_after, own_after = server.cpu_times(), me.cpu_times()
            cpu["used"] = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
            cpu["client"] = (own_after.user + own_after.system) - (own_before.user + own_before.system)
            return result

        tally, measured_s = asyncio.run(run())
        assert prober is not None
        loaded_pages = collect(prober)
        loaded = [t for _, t in loaded_pages]
        server_cpu = cpu["used"] / measured_s * 100
        client_cpu = cpu["client"] / (args.duration) * 100
    finally:
        if replica is not None:
            replica.stop()
        hq.stop()
        pg.stop()

    offered = args.devices / args.interval
    held = tally.ok / measured_s
    p95_idle, p95_load = percentile(idle, 0.95) * 1000, percentile(loaded, 0.95) * 1000
    result = {
        "devices": args.devices, "interval_s": args.interval, "console_replica": args.console_replica,
        "measured_s": round(measured_s, 1),
        "offered_hb_per_s": round(offered, 1), "held_hb_per_s": round(held, 1),
        "held_ratio": round(held / offered, 3),
        "ingest_p50_ms": round(percentile(tally.latencies, 0.5) * 1000, 2),
        "ingest_p99_ms": round(percentile(tally.latencies, 0.99) * 1000, 2),
        "late_share": round(tally.late / max(1, tally.ok), 4), "refused": tally.refused, "errors": tally.errors,
        "event_batches_ok": tally.events_ok,
        "console_pages_idle": len(idle), "console_pages_load": len(loaded),
        "console_p95_ms_idle": round(p95_idle, 1), "console_p95_ms_load": round(p95_load, 1),
        "console_p95_ratio": round(p95_load / p95_idle, 2),
        "console_p50_ms_load": round(percentile(loaded, 0.5) * 1000, 1),
        "server_cpu_percent": round(server_cpu, 1), "load_generator_cpu_percent": round(client_cpu, 1),
        "targets": {"hb_per_s": TARGET_HB_PER_S, "console_p95_ms": TARGET_CONSOLE_P95_MS},
    }
    result["meets_targets"] = bool(held >= min(TARGET_HB_PER_S, offered) * 0.98 and p95_load < TARGET_CONSOLE_P95_MS)
    print(f"heartbeats: offered {offered:.0f}/s, held {held:.0f}/s ({held / offered:.1%}); ingest p50 "
          f"{result['ingest_p50_ms']} ms, p99 {result['ingest_p99_ms']} ms; late {result['late_share']:.2%}; "
          f"refused {tally.refused}; errors {tally.errors}; CPU: HQ {server_cpu:.0f}%, "
          f"load generator {client_cpu:.0f}% of one core")
    print(f"console p95: idle {p95_idle:.0f} ms, under load {p95_load:.0f} ms (ratio {result['console_p95_ratio']})")
    for path in sorted({p for p, _ in loaded_pages}):
        idle_times = [t for p, t in idle_pages if p == path]
        load_times = [t for p, t in loaded_pages if p == path]
        idle_p95, load_p50 = percentile(idle_times, 0.95) * 1000, percentile(load_times, 0.5) * 1000
        print(f"  {path:<34} idle p95 {idle_p95:6.0f} ms   load p50 {load_p50:6.0f} ms  "
              f"p95 {percentile(load_times, 0.95) * 1000:6.0f} ms")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
