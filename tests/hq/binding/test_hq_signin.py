"""Sign-in, refresh and sign-out at HQ over real signed requests (SQLite and PostgreSQL)."""

from __future__ import annotations

import time

from hq.binding.tokens import parse_token
from tests.hq.binding.binding_client import POLICY_HASH, Bound, add_staff_member, flush, gateway_key, verify
from tests.hq.conftest import Hq


def test_a_signed_in_token_is_bound_to_the_device_key_and_acknowledged(hq: Hq) -> None:
    add_staff_member(hq, "S001")
    device = hq.device("o1")
    answer = Bound(device, "S001").sign_in().json()
    claims = parse_token(hq.client.app.state.binding.key, answer["token"])  # type: ignore[attr-defined]
    from agent.signing import jwk_thumbprint, public_key_text

    assert claims.jkt == jwk_thumbprint(public_key_text(device.key))
    assert (claims.staff, claims.device, claims.outlet, claims.ack) == ("S001", device.device_id, "o1", True)
    assert answer["expires_at"] - answer["issued_at"] == 600
    assert answer["policy_hash"] == POLICY_HASH


def test_wrong_password_unknown_staff_and_lockout_after_five_failures(hq: Hq) -> None:
    add_staff_member(hq, "S001")
    device = hq.device("o1")
    bound = Bound(device, "S001")
    assert Bound(device, "NOBODY").sign_in().json()["error"] == "bad_credentials"
    codes = [bound.sign_in("wrong password").json()["error"] for _ in range(5)]
    assert codes == ["bad_credentials"] * 4 + ["staff_locked"]
    locked = bound.sign_in()  # even the right password waits for the lock to end
    assert locked.status_code == 403 and locked.json()["error"] == "staff_locked"
    done = hq.client.app.state.binding  # type: ignore[attr-defined]
    from hq.staff import commands

    assert "cleared" in commands.staff_clear(hq.state.sessions, staff_id="S001")
    done.directory.poll()
    assert bound.sign_in().status_code == 200
    denied = [a for a in hq.audit() if a["action"] == "session_signin" and a["outcome"] == "denied"]
    assert {a["reason"] for a in denied} == {"bad_credentials", "staff_locked"}


def test_staff_of_another_outlet_cannot_sign_in_here(hq: Hq) -> None:
    add_staff_member(hq, "S002", outlet="o2")
    response = Bound(hq.device("o1"), "S002").sign_in()
    assert response.status_code == 403 and response.json()["error"] == "wrong_outlet"


def test_a_challenge_is_single_use_and_bound_to_its_device(hq: Hq) -> None:
    add_staff_member(hq, "S001")
    device, other = hq.device("o1"), hq.device("o1")
    bound = Bound(device, "S001")
    challenge = device.signed("POST", "/v1/session/challenge").json()["challenge"]
    first = bound.sign_in(binding=bound.binding(challenge=challenge))
    assert first.status_code == 200
    again = bound.sign_in(binding=bound.binding(challenge=challenge))
    assert again.status_code == 400 and "already used" in again.json()["detail"]
    foreign = other.signed("POST", "/v1/session/challenge").json()["challenge"]
    stolen = bound.sign_in(binding=bound.binding(challenge=foreign))
    assert stolen.status_code == 400 and "not issued to this device" in stolen.json()["detail"]


def test_a_binding_signed_by_another_key_or_for_another_staff_is_refused(hq: Hq) -> None:
    add_staff_member(hq, "S001")
    add_staff_member(hq, "S003")
    device, other = hq.device("o1"), hq.device("o1")
    envelope = Bound(other, "S001").binding()
    envelope["document"]["device"] = device.device_id  # claims to be from `device`, signed by `other`
    response = Bound(device, "S001").sign_in(binding=envelope)
    assert response.status_code == 400 and "signature" in response.json()["detail"]
    for_other_staff = Bound(device, "S003").binding()
    response = Bound(device, "S001").sign_in(binding=for_other_staff)
    assert response.status_code == 400 and "staff" in response.json()["detail"]


def test_without_acknowledgement_the_token_is_issued_but_verify_waits_for_it(hq: Hq) -> None:
    add_staff_member(hq, "S001")
    key = gateway_key(hq)
    bound = Bound(hq.device("o1"), "S001")
    answer = bound.sign_in(acknowledge=False).json()
    assert answer["acknowledged"] is False
    token = answer["token"]
    assert verify(hq, key, session=token, proof=bound.proof(token))["reason"] == "policy_not_acknowledged"
    refreshed = bound.refresh(token, answer["session_id"], acknowledgement=bound.ack()).json()
    assert refreshed["acknowledged"] is True and refreshed["session_id"] == answer["session_id"]
    new = refreshed["token"]
    assert verify(hq, key, session=new, proof=bound.proof(new))["decision"] == "allow"
    # The register now holds it: the next sign-in of S001 is acknowledged without a new document.
    assert bound.sign_in(acknowledge=False).json()["acknowledged"] is True


def test_an_acknowledgement_of_an_older_text_does_not_count(hq: Hq) -> None:
    add_staff_member(hq, "S001")
    bound = Bound(hq.device("o1"), "S001")
    stale = "0" * 64
    answer = bound.sign_in(acknowledge=False, policy_hash=stale, acknowledgement=bound.ack(stale)).json()
    assert answer["acknowledged"] is False


def test_one_staff_per_terminal_a_new_sign_in_ends_the_previous_session(hq: Hq) -> None:
    add_staff_member(hq, "S001")
    add_staff_member(hq, "S003")
    key = gateway_key(hq)
    device = hq.device("o1")
    first, second = Bound(device, "S001"), Bound(device, "S003")
    old = first.token()
    new = second.token()
    assert verify(hq, key, session=old, proof=first.proof(old))["reason"] == "signed_out"
    assert verify(hq, key, session=new, proof=second.proof(new))["decision"] == "allow"


def test_refresh_needs_a_fresh_device_signature_and_a_live_session(hq: Hq) -> None:
    add_staff_member(hq, "S001")
    device, other = hq.device("o1"), hq.device("o1")
    bound = Bound(device, "S001")
    answer = bound.sign_in().json()
    token, sid = answer["token"], answer["session_id"]
    stolen = Bound(other, "S001").refresh(token, sid)
    assert stolen.status_code == 403 and stolen.json()["error"] == "wrong_device"
    stale = bound.refresh(token, sid, binding=bound.binding(sid=sid, iat=time.time() - 3600))
    assert stale.status_code == 400 and "iat" in stale.json()["detail"]
    assert bound.refresh(token, sid).status_code == 200
    assert device.signed("POST", "/v1/session/signout", {"session_id": sid}).json()["ended"] is True
    after = bound.refresh(token, sid)
    assert after.status_code == 401 and after.json()["error"] == "signed_out"


def test_suspended_staff_cannot_sign_in_or_refresh(hq: Hq) -> None:
    add_staff_member(hq, "S001")
    bound = Bound(hq.device("o1"), "S001")
    answer = bound.sign_in().json()
    from hq.staff import commands

    commands.staff_suspend(hq.state.sessions, staff_id="S001", reason="test")
    hq.client.app.state.binding.directory.poll()  # type: ignore[attr-defined]
    assert bound.sign_in().json()["error"] == "staff_suspended"
    assert bound.refresh(answer["token"], answer["session_id"]).json()["error"] == "staff_suspended"
    flush(hq)
    assert any(e["kind"] == "staff.suspended" for e in hq.events())


def test_an_acknowledgement_queued_offline_reaches_the_register_as_an_event(hq: Hq) -> None:
    from agent.events import Event

    add_staff_member(hq, "S001")
    bound = Bound(hq.device("o1"), "S001")
    assert bound.sign_in(acknowledge=False).json()["acknowledged"] is False
    envelope = bound.ack()
    forged = bound.ack()
    forged["document"]["staff"] = "S999"  # altered after signing: refused, not stored
    events = [Event("policy.acknowledged", {"staff_id": "S001", "acknowledgement": envelope}),
              Event("policy.acknowledged", {"staff_id": "S999", "acknowledgement": forged})]
    assert bound.device.send_events(events).status_code == 200
    assert bound.device.send_events(events[:1]).json()["duplicates"] == 1
    from hq.binding.store import list_acks

    with hq.state.sessions() as session:
        register = list_acks(session)
    assert [(a.staff_id, a.policy_hash, a.device_id) for a in register] == [
        ("S001", POLICY_HASH, bound.device.device_id)]
    assert bound.sign_in(acknowledge=False).json()["acknowledged"] is True
