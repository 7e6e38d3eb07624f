"""The agent's side of the binding protocol over its signed HQ client: challenge, sign-in,
refresh, sign-out. The device key signs the binding document here and never leaves the service."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.binding.documents import binding_document, signed
from agent.hqclient import HqBadAnswer, HqClient


@dataclass(frozen=True)
class SessionGrant:
    """A bound session as HQ granted it. Times are HQ's clock (see ``local_expiry``)."""

    token: str
    session_id: str
    staff: str
    outlet_id: str
    issued_at: int
    expires_at: int
    acknowledged: bool
    policy_hash: str

    def local_expiry(self, clock_offset_s: float) -> float:
        return self.expires_at - clock_offset_s


def _grant(answer: dict[str, Any]) -> SessionGrant:
    try:
        return SessionGrant(token=str(answer["token"]), session_id=str(answer["session_id"]),
                            staff=str(answer["staff"]), outlet_id=str(answer["outlet_id"]),
                            issued_at=int(answer["issued_at"]), expires_at=int(answer["expires_at"]),
                            acknowledged=bool(answer["acknowledged"]), policy_hash=str(answer["policy_hash"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise HqBadAnswer(f"session answer lacks a field: {exc}") from exc


def _binding(client: HqClient, key: Ed25519PrivateKey, *, staff: str, outlet: str,
             sid: str | None = None) -> dict[str, Any]:
    challenge = client.request("POST", "/v1/session/challenge").get("challenge")
    if not isinstance(challenge, str):
        raise HqBadAnswer("challenge answer lacks a string 'challenge'")
    iat = int(time.time() + client.clock_offset_s)
    document = binding_document(staff=staff, device=client.device_id, outlet=outlet, challenge=challenge, iat=iat,
                                sid=sid)
    return signed(key, document)


def sign_in(client: HqClient, key: Ed25519PrivateKey, *, outlet: str, staff: str, password: str,
            policy_hash: str | None, acknowledgement: dict[str, Any] | None = None) -> SessionGrant:
    body: dict[str, Any] = {"staff": staff, "password": password,
                            "binding": _binding(client, key, staff=staff, outlet=outlet), "policy_hash": policy_hash}
    if acknowledgement is not None:
        body["acknowledgement"] = acknowledgement
    return _grant(client.request("POST", "/v1/session/signin", body))


def refresh(client: HqClient, key: Ed25519PrivateKey, grant: SessionGrant, *, policy_hash: str | None,
            acknowledgement: dict[str, Any] | None = None) -> SessionGrant:
    body: dict[str, Any] = {"token": grant.token, "policy_hash": policy_hash,
                            "binding": _binding(client, key, staff=grant.staff, outlet=grant.outlet_id,
                                                sid=grant.session_id)}
    if acknowledgement is not None:
        body["acknowledgement"] = acknowledgement
    return _grant(client.request("POST", "/v1/session/refresh", body))


def sign_out(client: HqClient, *, session_id: str, reason: str) -> bool:
    answer = client.request("POST", "/v1/session/signout", {"session_id": session_id, "reason": reason})
    return bool(answer.get("ended"))
