"""A test device: enrolls a fresh Ed25519 key with HQ and signs requests with agent.signing.

Works over any httpx.Client: FastAPI's TestClient for in-process tests, or an httpx.Client that
pins the CA of a real HqServer. A test client, not product code.
"""

from __future__ import annotations

import json
import ssl
import time
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.events import Event
from agent.signing import b64url, enrollment_message, public_key_text, sign_request


def pinned_client(url: str, ca_file: str, timeout: float = 10.0) -> httpx.Client:
    """An HTTPS client that trusts only the HQ CA."""
    return httpx.Client(base_url=url, verify=ssl.create_default_context(cafile=str(ca_file)), timeout=timeout)


def enrollment_body(token: str, key: Ed25519PrivateKey, *, hostname: str = "pc-test-01", os: str = "Windows 10",
                    agent_version: str = "0.1.0") -> dict[str, Any]:
    public_key = public_key_text(key)
    return {
        "token": token,
        "public_key": public_key,
        "proof": b64url(key.sign(enrollment_message(token, public_key))),
        "hostname": hostname,
        "os": os,
        "agent_version": agent_version,
    }


def heartbeat_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "agent_version": "0.1.0",
        "policy_version": 1,
        "os_users": ["staff01"],
        "remote_sessions": [{"user": "staff01", "host": "10.0.0.5", "terminal": "rdp-tcp#1"}],
        "staff": "S1001",
        "spool_depth": 3,
        "lost_events": {"spool_full": 2},
        "clock_offset_s": 0.25,
        "cpu_percent": 1.5,
        "rss_bytes": 50_000_000,
        "interval_s": 10.0,
        "hostname": "pc-test-01",
        "os": "Windows 10",
    }
    payload.update(overrides)
    return payload


@dataclass
class Prepared:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class DeviceClient:
    def __init__(self, http: httpx.Client, key: Ed25519PrivateKey | None = None) -> None:
        self.http = http
        self.key = key or Ed25519PrivateKey.generate()
        self.device_id = ""
        self.outlet_id = ""
        self.policy_public_key = ""
        self.seq = 0

    def enroll(self, token: str, **fields: Any) -> httpx.Response:
        response = self.http.post("/v1/enroll", json=enrollment_body(token, self.key, **fields))
        if response.status_code == 200:
            data = response.json()
            self.device_id = data["device_id"]
            self.outlet_id = data["outlet_id"]
            self.policy_public_key = data["policy_public_key"]
        return response

    def prepare(self, method: str, path: str, payload: Any = None, *, body: bytes | None = None,
                seq: int | None = None, timestamp: int | None = None, key: Ed25519PrivateKey | None = None,
                device_id: str | None = None) -> Prepared:
        if body is None:
            body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        if seq is None:
            self.seq += 1
            seq = self.seq
        headers = sign_request(key or self.key, method=method, path=path, body=body,
                               device_id=device_id or self.device_id, seq=seq,
                               timestamp=int(time.time()) if timestamp is None else timestamp)
        headers["Content-Type"] = "application/json"
        return Prepared(method, path, headers, body)

    def send(self, prepared: Prepared) -> httpx.Response:
        return self.http.request(prepared.method, prepared.path, content=prepared.body, headers=prepared.headers)

    def signed(self, method: str, path: str, payload: Any = None, **options: Any) -> httpx.Response:
        return self.send(self.prepare(method, path, payload, **options))

    def heartbeat(self, **overrides: Any) -> httpx.Response:
        return self.signed("POST", "/v1/heartbeat", heartbeat_payload(**overrides))

    def send_events(self, events: list[Event]) -> httpx.Response:
        return self.signed("POST", "/v1/events", {"events": [event.to_wire() for event in events]})

    def policy(self) -> httpx.Response:
        return self.signed("GET", "/v1/policy")
