"""A real HQ app served by uvicorn on loopback (plain HTTP, which the agent allows on loopback
only), in a thread of the test process: what the agent's binding code talks to in these tests."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.hqclient import HqClient, enroll
from hq.app import create_app
from hq.binding.store import create_gateway_key
from hq.settings import Settings
from hq.staff.passwords import hash_password
from hq.staff.store import add_staff
from hq.store.policies import publish_policy
from hq.store.tokens import create_token

PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveHq:
    url: str
    app: Any

    @property
    def state(self) -> Any:
        return self.app.state.hq

    @property
    def binding(self) -> Any:
        return self.app.state.binding

    def staff(self, staff_id: str, outlet: str = "o1") -> None:
        with self.state.sessions.begin() as session:
            add_staff(session, staff_id=staff_id, outlet_id=outlet, name=f"Person {staff_id}",
                      password_hash=hash_password(PASSWORD), now=time.time())
        self.binding.directory.poll()

    def gateway_key(self) -> str:
        with self.state.sessions.begin() as session:
            key = create_gateway_key(session, name="gw", now=time.time())
        self.binding.gateways.reload()
        return key

    def publish(self, body: dict[str, Any]) -> None:
        with self.state.sessions.begin() as session:
            publish_policy(session, body=body, key=self.state.policy_key, now=time.time())
        self.state.policies.refresh()

    def device(self, outlet: str = "o1") -> tuple[HqClient, Ed25519PrivateKey]:
        with self.state.sessions.begin() as session:
            token = create_token(session, outlet_id=outlet, uses=1, ttl_s=600, now=time.time())
        key = Ed25519PrivateKey.generate()
        answer = enroll(self.url, token=token, key=key, ca_file=None, timeout_s=5, hostname="pc", os_name="test")
        counter = itertools.count(1)
        client = HqClient(self.url, device_id=answer.device_id, key=key, ca_file=None,
                          next_seq=lambda: next(counter), timeout_s=5)
        return client, key


@contextmanager
def live_hq(tmp_path: Path) -> Iterator[LiveHq]:
    settings = Settings(db_url=f"sqlite:///{tmp_path / 'hq.sqlite3'}", data_dir=tmp_path / "hq-data")
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="test-hq", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test HQ did not start")
        time.sleep(0.05)
    try:
        yield LiveHq(url=f"http://127.0.0.1:{port}", app=app)
    finally:
        server.should_exit = True
        thread.join(15)
