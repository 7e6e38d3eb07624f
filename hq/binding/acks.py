"""Which policy text staff must acknowledge, and taking acknowledgements into the register."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from agent.binding.documents import AckClaims, DocumentError, check_ack
from agent.localchannel.default_policy import default_policy_text
from hq.binding.store import record_ack
from hq.heartbeats import LiveDevice


def current_policy_text_hash() -> str:
    """The hash of the policy text agents show (``policy_text``) and staff must acknowledge.

    Agents show the built-in text until HQ policies carry a text of their own; this is the one
    place that changes when they do.
    """
    return default_policy_text()["hash"]


def take_ack(session: Session, *, device: LiveDevice, envelope: Any, now: float,
             staff: str | None = None) -> AckClaims:
    """Check a device-signed acknowledgement and store it (once); DocumentError when it does not check out."""
    ack = check_ack(device.public_key, envelope, device=device.device_id, outlet=device.outlet_id, staff=staff)
    if ack.acknowledged_at > now + 300:
        raise DocumentError("tg-ack/1: acknowledged_at is in the future")
    record_ack(session, ack=ack, device_id=device.device_id, outlet_id=device.outlet_id, received_at=now)
    return ack
