"""The device side of session binding for in-process HQ tests: sign in, refresh, make proofs.

Built on tests/hq/device_client.py (real signed requests) and agent.binding (the real wire
formats). A test client, not product code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from agent.binding.documents import ack_document, binding_document, signed
from agent.binding.proof import make_proof
from agent.localchannel.default_policy import default_policy_text
from hq.binding.store import create_gateway_key
from hq.staff.passwords import hash_password
from hq.staff.store import add_staff
from tests.hq.conftest import Hq
from tests.hq.device_client import DeviceClient

POLICY_HASH = default_policy_text()["hash"]
PASSWORD = "correct horse battery"
URL = "https://waybill.example/outlets/o1/waybills/WB0000000001"


def add_staff_member(hq: Hq, staff_id: str, outlet: str = "o1", password: str = PASSWORD) -> None:
    with hq.state.sessions.begin() as session:
        add_staff(session, staff_id=staff_id, outlet_id=outlet, name=f"Person {staff_id}",
                  password_hash=hash_password(password), now=time.time())
    hq.client.app.state.binding.directory.poll()  # type: ignore[attr-defined]


def gateway_key(hq: Hq, name: str = "gw") -> str:
    with hq.state.sessions.begin() as session:
        key = create_gateway_key(session, name=name, now=time.time())
    hq.client.app.state.binding.gateways.reload()  # type: ignore[attr-defined]
    return key


@dataclass
class Bound:
    device: DeviceClient
    staff: str

    def binding(self, *, sid: str | None = None, iat: float | None = None, challenge: str | None = None) -> Any:
        if challenge is None:
            challenge = self.device.signed("POST", "/v1/session/challenge").json()["challenge"]
        document = binding_document(staff=self.staff, device=self.device.device_id, outlet=self.device.outlet_id,
                                    challenge=challenge, iat=int(time.time() if iat is None else iat), sid=sid)
        return signed(self.device.key, document)

    def ack(self, policy_hash: str = POLICY_HASH) -> Any:
        return signed(self.device.key, ack_document(staff=self.staff, device=self.device.device_id,
                                                    outlet=self.device.outlet_id, policy_hash=policy_hash,
                                                    policy_version=1, acknowledged_at=time.time()))

    def sign_in(self, password: str = PASSWORD, *, acknowledge: bool = True, **body: Any) -> httpx.Response:
        payload: dict[str, Any] = {"staff": self.staff, "password": password, "binding": self.binding(),
                                   "policy_hash": POLICY_HASH}
        if acknowledge:
            payload["acknowledgement"] = self.ack()
        payload.update(body)
        return self.device.signed("POST", "/v1/session/signin", payload)

    def token(self, **kw: Any) -> str:
        response = self.sign_in(**kw)
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    def refresh(self, token: str, sid: str, **body: Any) -> httpx.Response:
        payload: dict[str, Any] = {"token": token, "binding": self.binding(sid=sid), "policy_hash": POLICY_HASH}
        payload.update(body)
        return self.device.signed("POST", "/v1/session/refresh", payload)

    def proof(self, token: str, *, method: str = "GET", url: str = URL, now: float | None = None) -> str:
        return make_proof(self.device.key, device_id=self.device.device_id, token=token, method=method, url=url,
                          now=time.time() if now is None else now)


def verify(hq: Hq, key: str, **body: Any) -> dict[str, Any]:
    body.setdefault("method", "GET")
    body.setdefault("url", URL)
    response = hq.client.post("/v1/verify", json=body, headers={"X-TG-Gateway-Key": key})
    assert response.status_code == 200, response.text
    return dict(response.json())


def flush(hq: Hq) -> None:
    hq.client.app.state.binding.flush()  # type: ignore[attr-defined]
    hq.state.flush()
