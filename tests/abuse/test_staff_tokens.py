"""Staff session tokens carried across outlets: a token of outlet o1's PC in the hands of a PC in
outlet o2 — used at the gateway, refreshed, signed out, or a binding that claims the other outlet.
Every attempt is refused, and the real session at o1 carries on untouched.

Builds on the binding helpers of tests/hq/binding (real signed requests, real wire formats).
"""

from __future__ import annotations

import time

import pytest

from agent.binding.documents import binding_document, signed
from tests.abuse.conftest import InProcessHq
from tests.hq.binding.binding_client import PASSWORD, POLICY_HASH, Bound, add_staff_member, gateway_key, verify
from tests.hq.conftest import Hq

Setup = tuple[Hq, str, Bound, Bound, str, str]


@pytest.fixture
def outlets(hq: InProcessHq) -> Setup:
    """S001 signed in on a PC of o1; a PC of o2 that wants in; the gateway key."""
    binding_hq = Hq(client=hq.client, state=hq.state)
    add_staff_member(binding_hq, "S001", outlet="o1")
    add_staff_member(binding_hq, "S002", outlet="o2")
    key = gateway_key(binding_hq)
    home = Bound(binding_hq.device("o1"), "S001")
    answer = home.sign_in().json()
    return binding_hq, key, home, Bound(binding_hq.device("o2"), "S001"), answer["token"], answer["session_id"]


def still_allowed(hq: Hq, key: str, home: Bound, token: str) -> bool:
    return verify(hq, key, session=token, proof=home.proof(token), outlet="o1")["decision"] == "allow"


def test_an_o1_token_with_a_proof_from_an_o2_pc_is_denied(outlets: Setup) -> None:
    hq, key, home, away, token, _ = outlets
    denied = verify(hq, key, session=token, proof=away.proof(token), outlet="o1")
    assert denied["decision"] == "deny" and denied["reason"] == "wrong_device", denied
    assert still_allowed(hq, key, home, token)


def test_an_o1_token_asked_about_for_outlet_o2_is_denied(outlets: Setup) -> None:
    hq, key, home, _, token, _ = outlets
    denied = verify(hq, key, session=token, proof=home.proof(token), outlet="o2")
    assert denied["decision"] == "deny" and denied["reason"] == "wrong_outlet", denied


def test_an_o2_pc_cannot_refresh_or_end_an_o1_session(outlets: Setup) -> None:
    hq, key, home, away, token, sid = outlets
    refreshed = away.refresh(token, sid)
    assert refreshed.status_code in (401, 403), refreshed.text
    ended = away.device.signed("POST", "/v1/session/signout", {"session_id": sid})
    assert ended.status_code >= 400 or ended.json()["ended"] is False, ended.text
    assert still_allowed(hq, key, home, token)


def test_staff_of_o1_cannot_sign_in_on_an_o2_pc_even_with_the_right_password(outlets: Setup) -> None:
    hq, key, home, away, token, _ = outlets
    refused = away.sign_in()
    assert refused.status_code == 403 and refused.json()["error"] == "wrong_outlet", refused.text
    assert still_allowed(hq, key, home, token)


def test_a_binding_that_claims_the_other_outlet_is_refused(outlets: Setup) -> None:
    hq, key, home, away, token, _ = outlets
    challenge = away.device.signed("POST", "/v1/session/challenge").json()["challenge"]
    forged = signed(away.device.key, binding_document(staff="S001", device=away.device.device_id, outlet="o1",
                                                      challenge=challenge, iat=int(time.time())))
    refused = away.device.signed("POST", "/v1/session/signin", {
        "staff": "S001", "password": PASSWORD, "binding": forged, "policy_hash": POLICY_HASH})
    assert 400 <= refused.status_code < 500, refused.text
    assert still_allowed(hq, key, home, token)
