"""Enrollment: a device proves it holds a key, spends one use of a token and gets a device id."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import sessionmaker

from agent.signing import SignatureError, b64url_decode, enrollment_message, load_public_key
from hq.store.devices import create_device
from hq.store.tokens import RACED, consume_token, token_failure_reason


class BadProof(ValueError):
    """The public key is malformed or the proof was not made with it."""


class InvalidToken(ValueError):
    """The token is unknown, expired or used up; ``reason`` is for the audit log only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Enrolled:
    device_id: str
    outlet_id: str


def check_proof(*, token: str, public_key: str, proof: str) -> None:
    """Checked before the token is touched: a request that cannot sign costs no database work."""
    try:
        key = load_public_key(public_key)
    except SignatureError as exc:
        raise BadProof(f"public_key: {exc}") from None
    try:
        key.verify(b64url_decode(proof), enrollment_message(token, public_key))
    except Exception as exc:  # InvalidSignature or SignatureError from a malformed proof
        raise BadProof("proof: not a signature of the enrollment message by public_key") from exc


def enroll_device(
    sessions: sessionmaker,
    *,
    token: str,
    public_key: str,
    hostname: str,
    os: str,
    agent_version: str,
    now: float,
) -> Enrolled:
    """Spend one token use and register the device in one transaction (both or neither).

    A token that cannot work is refused after a read only, so a flood of made-up tokens costs
    no write transactions; the conditional UPDATE below still decides races between real ones.
    """
    with sessions() as session:
        reason = token_failure_reason(session, token=token, now=now)
    if reason != RACED:
        raise InvalidToken(reason)
    with sessions.begin() as session:
        outlet_id = consume_token(session, token=token, now=now)
        if outlet_id is not None:
            device = create_device(
                session,
                outlet_id=outlet_id,
                public_key=public_key,
                hostname=hostname,
                os=os,
                agent_version=agent_version,
                now=now,
            )
            return Enrolled(device_id=device.id, outlet_id=outlet_id)
    with sessions() as session:
        raise InvalidToken(token_failure_reason(session, token=token, now=now))
