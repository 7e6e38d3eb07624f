"""Request and response models of the binding endpoints (strict, bounded; secrets never echoed)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from agent.binding.proof import MAX_PROOF_CHARS, MAX_URL_CHARS
from hq.binding.tokens import MAX_TOKEN_CHARS

StaffId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Short = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Hash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Token = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TOKEN_CHARS)]
Envelope = Annotated[dict[str, Any], Field(max_length=2)]


class _Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChallengeOut(_Response):
    challenge: str
    expires_in_s: float
    server_time: float


class SignInIn(_Request):
    staff: StaffId
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)] = Field(repr=False)
    binding: Envelope
    policy_hash: Hash | None = None
    acknowledgement: Envelope | None = None


class RefreshIn(_Request):
    token: Token = Field(repr=False)
    binding: Envelope
    policy_hash: Hash | None = None
    acknowledgement: Envelope | None = None


class SignOutIn(_Request):
    session_id: Short
    reason: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "signout"


class SessionOut(_Response):
    token: str
    session_id: str
    staff: str
    outlet_id: str
    issued_at: int
    expires_at: int
    acknowledged: bool
    policy_hash: str
    server_time: float


class SignOutOut(_Response):
    session_id: str
    ended: bool
    server_time: float


class VerifyIn(_Request):
    method: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    url: Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL_CHARS)]
    session: Token | None = Field(default=None, repr=False)
    proof: Annotated[str, StringConstraints(min_length=1, max_length=MAX_PROOF_CHARS)] | None = Field(
        default=None, repr=False)
    account: StaffId | None = None
    outlet: Short | None = None
    waybill_outlet: Short | None = None


class VerifyOut(_Response):
    decision: str
    reason: str
    detail: str
    staff: str | None
    device: str | None
    outlet: str | None
    session_id: str | None
    expires_at: int | None
    server_time: float


class QueryReport(_Request):
    staff: StaffId
    device: Short | None = None
    outlet: Short | None = None
    waybill_outlet: Short
    at: Annotated[float, Field(allow_inf_nan=False)] | None = None


class ActivityIn(_Request):
    queries: Annotated[list[QueryReport], Field(max_length=5000)]


class ActivityOut(_Response):
    accepted: int
    server_time: float
