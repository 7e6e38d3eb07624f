"""Events to a SIEM: ECS shape, RFC 5424 frames, real UDP / TCP / HTTP receivers on loopback,
at-least-once delivery through outages, one sender among replicas, and ingest never waiting."""

from __future__ import annotations

import http.server
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, ClassVar

import pytest

from agent.events import Event
from hq.settings import Settings
from hq.siem.ecs import to_ecs
from hq.siem.forwarder import SiemForwarder
from hq.siem.sinks import Line, SinkConfigError, open_sink, syslog_frame
from tests.hq.conftest import Hq, start_hq

RFC5424 = re.compile(
    r"^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (\S+) terminal-guard-hq (\d+) (\S{1,32}) - (\{.*\})$"
)


def finding(rule: str = "r1", **fields: Any) -> Event:
    return Event("finding", {"rule": rule, "title": "AnyDesk started", "severity": "critical",
                             "category": "remote_access", "process.name": "AnyDesk.exe", "process.pid": 4242,
                             "process.parent.name": "explorer.exe", "pii.counts": {"mobile": 3}, **fields},
                 priority=3)


def test_a_finding_becomes_an_ecs_alert_with_nested_fields() -> None:
    doc = to_ecs({"pk": 7, "event_id": "e1", "device_id": "d1", "kind": "finding", "priority": 3,
                  "created": 1_700_000_000.0, "received_at": 1_700_000_001.5, "origin": "agent",
                  "body": finding().body}, outlet_id="0571-XH", hostname="pc-1")
    assert doc["event"]["kind"] == "alert" and doc["event"]["category"] == ["process", "network"]
    assert doc["process"] == {"name": "AnyDesk.exe", "pid": 4242, "parent": {"name": "explorer.exe"}}
    assert doc["rule"] == {"name": "r1", "category": "remote_access"}
    assert doc["host"] == {"id": "d1", "hostname": "pc-1"} and doc["labels"] == {"outlet_id": "0571-XH"}
    assert doc["@timestamp"] == "2023-11-14T22:13:20.000Z" and doc["event"]["ingested"].endswith("21.500Z")
    assert doc["terminal_guard"]["body"] == {"severity": "critical", "pii.counts": {"mobile": 3}}
    assert doc["message"] == "AnyDesk started"
    heartbeat_like = to_ecs({"pk": 8, "event_id": "e2", "device_id": "d1", "kind": "agent.started", "priority": 0,
                             "created": 1.0, "received_at": 1.0, "origin": "agent", "body": {"host.name": "x"}})
    assert heartbeat_like["event"]["kind"] == "event" and heartbeat_like["host"] == {"id": "d1"}


def test_syslog_frames_follow_rfc_5424() -> None:
    line = Line(pk=1, text='{"a":"\\u7ec8"}', priority=3, kind="alert.sharing.two pcs", created=1_700_000_000.0)
    frame = syslog_frame(line, facility=16, hostname="hq-1").decode("ascii")
    match = RFC5424.match(frame)
    assert match, frame
    assert match.group(1) == str(16 * 8 + 2)  # local0, critical
    assert match.group(5) == "alert.sharing.two_pcs"


@pytest.mark.parametrize("url", ["ftp://x", "syslog+udp://", "syslog+udp://h:99999", "syslog://h?facility=kern"])
def test_bad_sink_urls_say_what_was_expected(url: str) -> None:
    with pytest.raises(SinkConfigError, match="--siem"):
        open_sink(url)


@pytest.fixture
def udp_receiver() -> Iterator[tuple[str, list[bytes]]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    received: list[bytes] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                received.append(sock.recv(70_000))
            except TimeoutError:
                continue

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield f"syslog+udp://127.0.0.1:{sock.getsockname()[1]}", received
    stop.set()
    thread.join(2)
    sock.close()


def wait_for(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return result


def forwarder(hq: Hq, url: str, **options: Any) -> SiemForwarder:
    return SiemForwarder(sessions=hq.state.sessions, sink=open_sink(url), settle_s=0.0, **options)


def test_serve_with_siem_sends_every_new_event_over_udp(hq_settings: Settings,
                                                        udp_receiver: tuple[str, list[bytes]]) -> None:
    url, received = udp_receiver
    settings = replace(hq_settings, siem_url=url)
    for hq in start_hq(settings):
        device = hq.device("0571-XH")
        assert device.send_events([finding(), Event("agent.started", {"version": "0.1.0"})]).status_code == 200
        assert wait_for(lambda: len(received) >= 2, timeout=15), received
    frames = [RFC5424.match(frame.decode("ascii")) for frame in received]
    assert all(frames), received
    docs = [json.loads(m.group(6)) for m in frames if m]
    assert [d["event"]["action"] for d in docs] == ["finding", "agent.started"]
    assert docs[0]["labels"] == {"outlet_id": "0571-XH"} and docs[0]["host"]["id"] == device.device_id


def test_tcp_frames_are_octet_counted(hq: Hq) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    url = f"syslog+tcp://127.0.0.1:{server.getsockname()[1]}"
    sender = forwarder(hq, url)
    sender.run_once()  # creates the cursor at the newest event: history is not sent
    hq.device().send_events([finding(f"r{n}") for n in range(3)])
    assert sender.run_once(now=time.time() + 1) is False
    conn, _ = server.accept()
    conn.settimeout(5)
    data = b""
    while data.count(b" terminal-guard-hq ") < 3:
        data += conn.recv(65536)
    frames = []
    while data:
        length, _, rest = data.partition(b" ")
        frames.append(rest[: int(length)])
        data = rest[int(length):]
    assert [json.loads(RFC5424.match(f.decode()).group(6))["rule"]["name"] for f in frames] == ["r0", "r1", "r2"]  # type: ignore[union-attr]
    sender.stop()
    conn.close()
    server.close()


class Collector(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []
    fail_next: ClassVar[int] = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if Collector.fail_next:
            Collector.fail_next -= 1
            self.send_response(503)
        else:
            Collector.bodies.append(body)
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    Collector.bodies = []
    Collector.fail_next = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ingest"
    server.shutdown()
    server.server_close()


def test_http_outage_is_retried_and_nothing_is_lost_or_doubled(hq: Hq, collector: str) -> None:
    from hq.siem.sinks import SinkError

    sender = forwarder(hq, collector, batch=10)
    sender.run_once()
    device = hq.device()
    device.send_events([finding(f"r{n}") for n in range(25)])
    Collector.fail_next = 2
    for _ in range(2):
        with pytest.raises(SinkError, match="HTTP 503"):
            sender.run_once(now=time.time() + 1)
    while sender.run_once(now=time.time() + 1):
        pass
    lines = [json.loads(line) for body in Collector.bodies for line in body.decode().splitlines()]
    assert [d["rule"]["name"] for d in lines] == [f"r{n}" for n in range(25)]
    assert sender.stats.sent == 25 and sender.stats.lag == 0
    sender.stop()


def test_only_one_replica_forwards_at_a_time(hq: Hq, collector: str) -> None:
    first, second = forwarder(hq, collector), forwarder(hq, collector)
    assert first.run_once() is False and first.stats.leader
    hq.device().send_events([finding()])
    second.run_once(now=time.time() + 1)
    assert not second.stats.leader and Collector.bodies == []
    first.run_once(now=time.time() + 1)
    assert len(Collector.bodies) == 1
    first.stop()  # releases the lease: the other one takes over
    hq.device().send_events([finding("after")])
    second.run_once(now=time.time() + 1)
    assert second.stats.leader and len(Collector.bodies) == 2
    second.stop()


def test_a_long_outage_skips_the_oldest_and_counts_them(hq: Hq, collector: str) -> None:
    sender = forwarder(hq, collector, max_backlog=5)
    sender.run_once()
    hq.device().send_events([finding(f"r{n}") for n in range(12)])
    while sender.run_once(now=time.time() + 1):
        pass
    names = [json.loads(line)["rule"]["name"] for body in Collector.bodies for line in body.decode().splitlines()]
    assert names == [f"r{n}" for n in range(7, 12)]
    assert sender.stats.dropped["backlog"] == 7
    assert 'tg_siem_dropped_total{reason="backlog"} 7' in "\n".join(sender.stats.lines())
    sender.stop()


def test_ingest_never_waits_for_an_unreachable_siem(hq_settings: Settings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]  # nothing listens here once closed
    settings = replace(hq_settings, siem_url=f"syslog+tcp://127.0.0.1:{dead_port}")
    for hq in start_hq(settings):
        device = hq.device()
        started = time.monotonic()
        for n in range(20):
            assert device.send_events([finding(f"r{n}")]).status_code == 200
        assert time.monotonic() - started < 10
        assert len(hq.events(kind="finding")) == 20
