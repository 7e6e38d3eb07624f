"""POST and GET /v1/verify: allow, and every deny with its reason; sharing alerts from denials."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hq.binding.memory import REVOKED_KEY_RELOAD_S
from hq.binding.proof_replay import REPLAY_FILE
from hq.binding.store import revoke_gateway_key
from hq.settings import Settings
from hq.staff import commands as staff_commands
from hq.store.policies import publish_policy
from tests.hq.binding.binding_client import URL, Bound, add_staff_member, flush, gateway_key, verify
from tests.hq.conftest import Hq, start_hq


@pytest.fixture
def setup(hq: Hq) -> tuple[Hq, str, Bound, str]:
    add_staff_member(hq, "S001")
    key = gateway_key(hq)
    bound = Bound(hq.device("o1"), "S001")
    return hq, key, bound, bound.token()


def sharing_alerts(hq: Hq, rule: str) -> list[dict]:
    flush(hq)
    return [e for e in hq.events() if e["kind"] == f"alert.sharing.{rule}"]


def test_a_bound_request_is_allowed_and_its_proof_works_once(setup: tuple[Hq, str, Bound, str]) -> None:
    hq, key, bound, token = setup
    proof = bound.proof(token)
    allowed = verify(hq, key, session=token, proof=proof, outlet="o1", account="S001")
    assert allowed["decision"] == "allow" and allowed["staff"] == "S001" and allowed["outlet"] == "o1"
    assert verify(hq, key, session=token, proof=proof)["reason"] == "replayed_proof"


def test_a_gateway_needs_its_key(setup: tuple[Hq, str, Bound, str]) -> None:
    hq, _key, bound, token = setup
    body = {"method": "GET", "url": URL, "session": token, "proof": bound.proof(token)}
    for headers in ({}, {"X-TG-Gateway-Key": "tgw_wrong"}, {"Authorization": "Bearer tgw_wrong"}):
        response = hq.client.post("/v1/verify", json=body, headers=headers)
        assert response.status_code == 401 and response.json()["error"] == "bad_gateway_key"
    assert any(a["action"] == "gateway" and a["reason"] == "bad_gateway_key" for a in hq.audit())


def test_the_header_variant_answers_nginx_auth_request(setup: tuple[Hq, str, Bound, str]) -> None:
    hq, key, bound, token = setup
    headers = {"Authorization": f"Bearer {key}", "X-Original-Method": "GET", "X-Original-URL": URL + "?q=1",
               "X-TG-Session": token, "X-TG-Proof": bound.proof(token), "X-TG-Outlet": "o1"}
    allowed = hq.client.get("/v1/verify", headers=headers)
    assert allowed.status_code == 200 and allowed.headers["X-TG-Staff"] == "S001"
    replayed = hq.client.get("/v1/verify", headers=headers)
    assert replayed.status_code == 403 and replayed.headers["X-TG-Reason"] == "replayed_proof"
    missing = hq.client.get("/v1/verify", headers={"X-TG-Gateway-Key": key})
    assert missing.status_code == 400


@pytest.mark.parametrize(("change", "reason"), [
    ({"method": "POST"}, "proof_mismatch"),
    ({"url": "https://waybill.example/outlets/o1/waybills/WB0000000002"}, "proof_mismatch"),
    ({"outlet": "o2"}, "wrong_outlet"),
    ({"account": "S999"}, "wrong_staff"),
    ({"proof": None}, "missing_proof"),
    ({"proof": "not.a.proof"}, "malformed_proof"),
    ({"session": None}, "missing_token"),
    ({"session": "x.y.z"}, "malformed_token"),
])
def test_each_mismatch_is_denied_with_its_reason(setup: tuple[Hq, str, Bound, str], change: dict,
                                                  reason: str) -> None:
    hq, key, bound, token = setup
    body = {"session": token, "proof": bound.proof(token), "outlet": "o1"}
    body.update(change)
    assert verify(hq, key, **body)["reason"] == reason


def test_a_proof_from_another_pc_names_that_pc_and_raises_a_sharing_alert(setup: tuple[Hq, str, Bound, str]) -> None:
    hq, key, bound, token = setup
    other = Bound(hq.device("o1"), "S001")
    denied = verify(hq, key, session=token, proof=other.proof(token))
    assert denied["decision"] == "deny" and denied["reason"] == "wrong_device"
    [alert] = sharing_alerts(hq, "unbound_use")
    evidence = alert["body"]["evidence"]
    assert evidence["presenting_device"] == other.device.device_id
    assert evidence["bound_device"] == bound.device.device_id and alert["body"]["staff_id"] == "S001"
    assert alert["origin"] == "hq"


def test_a_tampered_token_and_a_forged_proof_are_denied(setup: tuple[Hq, str, Bound, str]) -> None:
    hq, key, bound, token = setup
    head, payload, mac = token.split(".")
    forged = f"{head}.{payload}.{mac[:-2]}AA"
    assert verify(hq, key, session=forged, proof=bound.proof(forged))["reason"] == "bad_token"
    proof = bound.proof(token)
    h, p, s = proof.split(".")
    assert verify(hq, key, session=token, proof=f"{h}.{p}.{s[::-1]}")["reason"] in ("bad_proof", "malformed_proof")


def test_a_known_token_is_denied_within_a_second_of_a_suspension_made_elsewhere(
        setup: tuple[Hq, str, Bound, str]) -> None:
    hq, key, bound, token = setup
    assert verify(hq, key, session=token, proof=bound.proof(token))["decision"] == "allow"  # now a known token
    # As the CLI does from another process: only the database changes; the binding poller must notice.
    staff_commands.staff_suspend(hq.state.sessions, staff_id="S001", reason="case 9")
    suspended = time.monotonic()
    reason = "ok"
    while reason == "ok" and time.monotonic() - suspended < 3.0:
        reason = verify(hq, key, session=token, proof=bound.proof(token))["reason"]
    denied_after = time.monotonic() - suspended
    assert reason == "staff_suspended"
    assert denied_after <= 1.0, f"a suspension took {denied_after:.2f} s to reach verify"


def test_each_session_is_answered_with_its_own_identity_and_time(setup: tuple[Hq, str, Bound, str]) -> None:
    hq, key, bound, token = setup
    add_staff_member(hq, "S002")
    other = Bound(hq.device("o1"), "S002")
    other_token = other.token()
    first = verify(hq, key, session=token, proof=bound.proof(token))
    second = verify(hq, key, session=other_token, proof=other.proof(other_token))
    before_third = time.time()
    third = verify(hq, key, session=token, proof=bound.proof(token))
    assert [a["staff"] for a in (first, second, third)] == ["S001", "S002", "S001"]
    assert first["session_id"] == third["session_id"] != second["session_id"]
    assert third["server_time"] >= before_third  # answered now, not replayed from the first answer
    assert third == {**first, "server_time": third["server_time"]}


def test_a_gateway_key_revoked_elsewhere_is_refused_within_the_reload_period(
        setup: tuple[Hq, str, Bound, str]) -> None:
    hq, key, bound, token = setup
    assert verify(hq, key, session=token, proof=bound.proof(token))["decision"] == "allow"  # the key is known
    with hq.state.sessions.begin() as session:  # as the CLI does from another process
        revoke_gateway_key(session, name="gw", now=time.time())
    revoked = time.monotonic()

    def status() -> int:
        body = {"method": "GET", "url": URL, "session": token, "proof": bound.proof(token)}
        return hq.client.post("/v1/verify", json=body, headers={"X-TG-Gateway-Key": key}).status_code

    while (code := status()) == 200 and time.monotonic() - revoked < REVOKED_KEY_RELOAD_S + 5:
        time.sleep(0.1)
    assert code == 401, "the revoked key still works"
    assert time.monotonic() - revoked <= REVOKED_KEY_RELOAD_S + 1


def test_clock_skew_beyond_the_window_is_denied(setup: tuple[Hq, str, Bound, str]) -> None:
    hq, key, bound, token = setup
    assert verify(hq, key, session=token, proof=bound.proof(token, now=time.time() - 120))["reason"] == "clock_skew"
    assert verify(hq, key, session=token, proof=bound.proof(token, now=time.time() + 120))["reason"] == "clock_skew"
    assert verify(hq, key, session=token, proof=bound.proof(token, now=time.time() - 30))["decision"] == "allow"


def test_a_revoked_device_and_a_signed_out_session_are_denied(setup: tuple[Hq, str, Bound, str]) -> None:
    hq, key, bound, token = setup
    from hq import commands

    commands.revoke(hq.state.sessions, device_id=bound.device.device_id)
    hq.state.live.poll_revocations()
    assert verify(hq, key, session=token, proof=bound.proof(token))["reason"] == "device_revoked"


def test_sign_out_ends_the_session_at_once(setup: tuple[Hq, str, Bound, str]) -> None:
    hq, key, bound, token = setup
    sid = verify(hq, key, session=token, proof=bound.proof(token))["session_id"]
    assert bound.device.signed("POST", "/v1/session/signout", {"session_id": sid}).json()["ended"]
    assert verify(hq, key, session=token, proof=bound.proof(token))["reason"] == "signed_out"


def publish(hq: Hq, body: dict) -> None:
    with hq.state.sessions.begin() as session:
        publish_policy(session, body=body, key=hq.state.policy_key, now=time.time())
    hq.state.policies.refresh()


def test_an_expired_token_is_denied(hq: Hq) -> None:
    add_staff_member(hq, "S001")
    key = gateway_key(hq)
    bound = Bound(hq.device("o1"), "S001")
    publish(hq, {"binding": {"token_ttl_s": 2}})
    token = bound.token()
    time.sleep(3.1)
    assert verify(hq, key, session=token, proof=bound.proof(token))["reason"] == "expired_token"


def test_an_account_used_without_any_binding_raises_an_alert(setup: tuple[Hq, str, Bound, str]) -> None:
    hq, key, _bound, _token = setup
    assert verify(hq, key, account="S001")["reason"] == "missing_token"
    assert verify(hq, key)["reason"] == "missing_token"  # no account named: nothing to attribute
    [alert] = sharing_alerts(hq, "unbound_use")
    assert alert["body"]["evidence"] == {"reason": "missing_token", "bound_device": None, "account": "S001"}


def test_every_decision_is_in_the_audit_trail(setup: tuple[Hq, str, Bound, str]) -> None:
    hq, key, bound, token = setup
    for _ in range(3):
        verify(hq, key, session=token, proof=bound.proof(token))
    verify(hq, key, session=token, proof=None)
    rows = [a for a in hq.audit() if a["action"] == "verify"]
    assert sum(a["count"] for a in rows if a["outcome"] == "allow") == 3
    assert [a["reason"] for a in rows if a["outcome"] == "deny"] == ["missing_proof"]
    assert all(a["detail"] == "staff S001" for a in rows)


HOSTILE = st.one_of(st.none(), st.text(max_size=2100), st.sampled_from(["", ".", "..", "a.b.c", "e30.e30.e30"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(session=HOSTILE, proof=HOSTILE, method=st.text(max_size=20), url=st.text(max_size=300))
def test_hostile_verify_input_gets_an_answer_never_a_crash(setup: tuple[Hq, str, Bound, str], session: str | None,
                                                            proof: str | None, method: str, url: str) -> None:
    hq, key, _bound, _token = setup
    body = {"method": method or "GET", "url": url or URL, "session": session, "proof": proof}
    answer = hq.client.post("/v1/verify", json=body, headers={"X-TG-Gateway-Key": key})
    assert answer.status_code in (200, 422), answer.text
    if answer.status_code == 200:
        assert answer.json()["decision"] == "deny"
    headers = {"X-TG-Gateway-Key": key, "X-Original-Method": "GET", "X-Original-URL": URL}
    for name, value in (("X-TG-Session", session), ("X-TG-Proof", proof)):
        if value and value.isascii() and value.isprintable():
            headers[name] = value
    got = hq.client.get("/v1/verify", headers=headers)
    assert got.status_code in (400, 403), got.text


def test_a_proof_used_before_a_clean_restart_is_still_refused_after_it(hq_settings: Settings) -> None:
    first = start_hq(hq_settings)
    hq = next(first)
    add_staff_member(hq, "S001")
    key = gateway_key(hq)
    bound = Bound(hq.device("o1"), "S001")
    token = bound.token()
    used, unused = bound.proof(token), bound.proof(token)
    assert verify(hq, key, session=token, proof=used)["decision"] == "allow"
    first.close()  # a clean stop: the lifespan ends, the binding service saves what it has seen
    assert (hq_settings.data_dir / REPLAY_FILE).exists()
    again = start_hq(hq_settings)
    restarted = next(again)
    try:
        assert not (hq_settings.data_dir / REPLAY_FILE).exists()  # taken back once, then gone
        assert verify(restarted, key, session=token, proof=used)["reason"] == "replayed_proof"
        assert verify(restarted, key, session=token, proof=unused)["decision"] == "allow"
    finally:
        again.close()
