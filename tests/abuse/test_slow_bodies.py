"""Very slow bodies (slowloris) against the real server: a stranger who sends a request body a byte
at a time must not hold HQ's resources for ever, and must not keep honest devices out.

Measured bound: HQ must end a body that has not arrived within SLOW_BODY_BOUND_S. The body is
read before the signature is checked, so no key is needed to do this.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time

from tests.abuse.conftest import scaled
from tests.hq.device_client import DeviceClient, pinned_client
from tests.hq_server import HqServer

SLOW_BODY_BOUND_S = 75.0
SLOW_CLIENTS = int(scaled(8, 200))


class SlowBody:
    """One TLS connection that declares a body and then sends it a byte every ``pause_s``."""

    def __init__(self, hq: HqServer, path: str = "/v1/events", declared: int = 100_000, pause_s: float = 1.0) -> None:
        context = ssl.create_default_context(cafile=str(hq.ca_file))
        raw = socket.create_connection(("127.0.0.1", hq.port), timeout=10)
        self.sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
        self.sock.sendall(f"POST {path} HTTP/1.1\r\nHost: hq\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {declared}\r\n\r\n".encode())
        self.pause_s = pause_s
        self.opened = time.monotonic()
        self.ended_after: float | None = None
        self.answer = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)
        self._thread.start()

    def _trickle(self) -> None:
        """Runs until HQ answers or hangs up (ended_after is then set), or until close()."""
        self.sock.settimeout(self.pause_s)
        try:
            while not self._stop.is_set():
                self.sock.sendall(b" ")
                try:
                    self.answer = self.sock.recv(4096)
                except TimeoutError:
                    continue
                break
        except OSError:
            pass
        if not self._stop.is_set():
            self.ended_after = time.monotonic() - self.opened

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def enrolled(hq: HqServer, http) -> DeviceClient:
    device = DeviceClient(http)
    token = hq.cli("token", "create", "--outlet", "o-slow").stdout.strip().splitlines()[-1]
    assert device.enroll(token).status_code == 200
    return device


def test_a_body_sent_a_byte_a_second_is_cut_off_within_the_bound(hq_process: HqServer) -> None:
    slow = SlowBody(hq_process)
    try:
        deadline = time.monotonic() + SLOW_BODY_BOUND_S
        while slow.ended_after is None and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        slow.close()
    held = slow.ended_after if slow.ended_after is not None else time.monotonic() - slow.opened
    print(f"[abuse] slow body held for {held:.1f} s; answer {slow.answer[:40]!r}")
    assert slow.ended_after is not None and slow.ended_after <= SLOW_BODY_BOUND_S, \
        f"HQ still waited for the body after {held:.0f} s (bound {SLOW_BODY_BOUND_S:.0f} s)"


def test_slow_strangers_do_not_keep_honest_devices_out(hq_process: HqServer) -> None:
    slow = [SlowBody(hq_process) for _ in range(SLOW_CLIENTS)]
    try:
        time.sleep(1)
        with pinned_client(hq_process.url, str(hq_process.ca_file)) as http:
            device = enrolled(hq_process, http)
            started = time.monotonic()
            assert device.heartbeat().status_code == 200
            took = time.monotonic() - started
    finally:
        for connection in slow:
            connection.close()
    assert took < 2.0, f"an honest heartbeat took {took:.1f} s with {SLOW_CLIENTS} slow bodies open"


def test_slow_strangers_do_not_use_up_the_in_flight_limit(tmp_path) -> None:
    limit = 8
    with HqServer(data_dir=tmp_path / "hq", extra_args=("--max-inflight", str(limit))) as hq, \
            pinned_client(hq.url, str(hq.ca_file)) as http:
        device = enrolled(hq, http)
        slow = [SlowBody(hq) for _ in range(limit)]
        try:
            time.sleep(1)
            answers = [device.heartbeat().status_code for _ in range(3)]
        finally:
            for connection in slow:
                connection.close()
    assert 200 in answers, f"{limit} strangers trickling bodies took every in-flight slot: honest device got " \
                           f"{answers}"
