"""The signed binding and acknowledgement documents: who signs, what they name, what HQ refuses."""

from __future__ import annotations

import copy

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.binding.documents import (
    DocumentError,
    ack_document,
    binding_document,
    check_ack,
    check_binding,
    signed,
)

KEY = Ed25519PrivateKey.generate()
BIND = signed(KEY, binding_document(staff="S1", device="d1", outlet="o1", challenge="c" * 40, iat=100, sid="s"))
ACK = signed(KEY, ack_document(staff="S1", device="d1", outlet="o1", policy_hash="a" * 64, policy_version=3,
                               acknowledged_at=5.5))


def test_a_binding_names_staff_device_outlet_challenge_and_time() -> None:
    claims = check_binding(KEY.public_key(), BIND, staff="S1", device="d1", outlet="o1")
    assert (claims.challenge, claims.iat, claims.sid) == ("c" * 40, 100, "s")


@pytest.mark.parametrize("named", [{"staff": "S2"}, {"device": "d2"}, {"outlet": "o2"}])
def test_a_binding_for_someone_else_is_refused(named: dict) -> None:
    expected = {"staff": "S1", "device": "d1", "outlet": "o1", **named}
    with pytest.raises(DocumentError, match="does not match"):
        check_binding(KEY.public_key(), BIND, **expected)


def test_tampering_another_key_and_a_swapped_type_are_refused() -> None:
    tampered = copy.deepcopy(BIND)
    tampered["document"]["iat"] = 101
    with pytest.raises(DocumentError, match="signature"):
        check_binding(KEY.public_key(), tampered, staff="S1", device="d1", outlet="o1")
    with pytest.raises(DocumentError, match="signature"):
        check_binding(Ed25519PrivateKey.generate().public_key(), BIND, staff="S1", device="d1", outlet="o1")
    with pytest.raises(DocumentError, match="typ"):
        check_binding(KEY.public_key(), ACK, staff="S1", device="d1", outlet="o1")
    for junk in (None, [], {"document": "x"}, {"document": {}, "signature": 5}):
        with pytest.raises(DocumentError):
            check_binding(KEY.public_key(), junk, staff="S1", device="d1", outlet="o1")


def test_an_acknowledgement_checks_out_with_its_policy_hash_and_version() -> None:
    ack = check_ack(KEY.public_key(), ACK, device="d1", outlet="o1", staff="S1")
    assert (ack.staff, ack.policy_hash, ack.policy_version, ack.acknowledged_at) == ("S1", "a" * 64, 3, 5.5)
    with pytest.raises(DocumentError, match="does not match"):
        check_ack(KEY.public_key(), ACK, device="d1", outlet="o1", staff="S2")
    bad = signed(KEY, ack_document(staff="S1", device="d1", outlet="o1", policy_hash="short", policy_version=3,
                                   acknowledged_at=1.0))
    with pytest.raises(DocumentError, match="policy_hash"):
        check_ack(KEY.public_key(), bad, device="d1", outlet="o1")
