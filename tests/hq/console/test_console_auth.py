"""Who may see and do what in the console: login, sessions, roles, CSRF, and what is never rendered."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select, update

from agent.events import Event
from hq.console.actions import list_actions
from hq.console.sessions import IDLE_S
from hq.console.tables import Analyst, ConsoleSession
from hq.store.devices import get_device
from hq.store.tokens import list_tokens
from tests.hq.console.conftest import PASSWORD, ConsoleHq, login_token, sign_in

PAGES = ["/console/", "/console/devices", "/console/alerts", "/console/sharing", "/console/acknowledgements",
         "/console/tokens", "/console/policies", "/console/audit", "/console/outlets/o1", "/console/devices/x",
         "/console/alerts/1", "/console/sharing/S1"]


def actions_of(console: ConsoleHq, analyst: str) -> list[tuple[str, str]]:
    with console.state.sessions() as session:
        return [(a.action, a.outcome) for a in list_actions(session, analyst_id=analyst)]


@pytest.mark.parametrize("path", PAGES)
def test_no_page_without_login(console: ConsoleHq, path: str) -> None:
    client = console.new_client()
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login?next=")


def test_live_feeds_and_posts_answer_401_without_a_session(console: ConsoleHq) -> None:
    client = console.new_client()
    assert client.get("/console/live").status_code == 401
    assert client.get("/console/alerts/rows?after=0").status_code == 401
    assert client.post("/console/alerts/1/triage", data={"action": "acknowledge"}).status_code == 401
    assert client.get("/metrics").status_code == 401


def test_sign_in_sets_a_secure_httponly_strict_cookie_and_lands_on_next(console: ConsoleHq) -> None:
    client = console.new_client()
    console.analyst("viewer")
    token = login_token(client)
    response = client.post("/console/login", data={"login_token": token, "next": "/console/alerts?state=all",
                                                   "analyst_id": "vera", "password": PASSWORD},
                           follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/alerts?state=all"
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("tg_console="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert client.get("/console/alerts").status_code == 200


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/other", "/console\\@evil"])
def test_next_cannot_leave_the_console(console: ConsoleHq, target: str) -> None:
    client = console.new_client()
    console.analyst("viewer")
    token = login_token(client)
    response = client.post("/console/login", data={"login_token": token, "next": target, "analyst_id": "vera",
                                                   "password": PASSWORD}, follow_redirects=False)
    assert response.headers["location"] == "/console/"


def test_wrong_password_is_refused_with_one_message_and_audited(console: ConsoleHq) -> None:
    console.analyst("viewer")
    client = console.new_client()
    wrong = sign_in(client, "vera", "not-the-password-at-all")
    unknown = sign_in(client, "nobody", "not-the-password-at-all")
    assert wrong.status_code == unknown.status_code == 401
    message = "Wrong analyst id or password"
    assert message in wrong.text and message in unknown.text
    assert client.get("/console/", follow_redirects=False).status_code == 303
    assert actions_of(console, "vera") == [("login", "denied")]
    assert actions_of(console, "nobody") == [("login", "denied")]


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(console: ConsoleHq) -> None:
    console.analyst("viewer")
    client = console.new_client()
    for _ in range(5):
        assert sign_in(client, "vera", "guess-guess-guess").status_code == 401
    assert sign_in(client, "vera").status_code == 401
    with console.state.sessions.begin() as session:
        session.execute(update(Analyst).values(locked_until=time.time() - 1))
    assert sign_in(client, "vera").status_code == 303


def test_login_form_without_its_cookie_is_refused(console: ConsoleHq) -> None:
    console.analyst("viewer")
    forged = console.new_client()
    response = forged.post("/console/login", data={"login_token": "made-up", "next": "/console/",
                                                   "analyst_id": "vera", "password": PASSWORD},
                           follow_redirects=False)
    assert response.status_code == 400
    assert "tg_console" not in response.headers.get("set-cookie", "")


def test_password_is_stored_only_as_an_argon2id_hash(console: ConsoleHq) -> None:
    console.analyst("admin")
    with console.state.sessions() as session:
        stored = session.scalar(select(Analyst.password_hash).where(Analyst.id == "ada"))
    assert stored is not None and stored.startswith("$argon2id$") and PASSWORD not in stored


def test_a_change_without_the_csrf_token_is_refused_and_audited(console: ConsoleHq) -> None:
    browser = console.browser("admin")
    device = console.hq.device()
    response = browser.post(f"/console/devices/{device.device_id}/revoke", {"reason": "x"}, csrf=False)
    assert response.status_code == 403
    wrong = browser.post(f"/console/devices/{device.device_id}/revoke", {"reason": "x", "csrf": "wrong"})
    assert wrong.status_code == 403
    with console.state.sessions() as session:
        assert get_device(session, device_id=device.device_id).revoked_at is None  # type: ignore[union-attr]
    assert actions_of(console, "ada").count(("POST /console/devices/{device_id}/revoke", "denied")) == 2


def test_a_cross_origin_post_is_refused_even_with_the_token(console: ConsoleHq) -> None:
    browser = console.browser("admin")
    response = browser.post("/console/tokens", {"outlet": "o1"}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    with console.state.sessions() as session:
        assert list_tokens(session) == []
    same = browser.post("/console/tokens", {"outlet": "o1"}, headers={"Origin": "https://testserver"})
    assert same.status_code == 200


def test_a_viewer_cannot_triage_revoke_suspend_create_tokens_or_publish(console: ConsoleHq) -> None:
    device = console.hq.device()
    assert device.send_events([Event("finding", {"rule": "r1", "title": "t", "severity": "high",
                                                  "category": "automation"}, priority=2)]).status_code == 200
    viewer = console.browser("viewer")
    page = viewer.get("/console/alerts")
    assert 'value="acknowledge"' not in page.text and "Revoke device" not in viewer.get(
        f"/console/devices/{device.device_id}").text
    pk = int(page.text.split('data-pk="')[1].split('"')[0])
    refused = [
        viewer.post(f"/console/alerts/{pk}/triage", {"action": "acknowledge"}),
        viewer.post(f"/console/devices/{device.device_id}/revoke", {"reason": "x"}),
        viewer.post("/console/staff/S1/suspend", {"reason": "x"}),
        viewer.post("/console/tokens", {"outlet": "o1"}),
        viewer.post("/console/policies", {"body": "{}"}),
    ]
    assert [r.status_code for r in refused] == [403] * 5
    assert "needs the analyst role" in refused[0].text
    assert "open" in viewer.get("/console/alerts").text
    with console.state.sessions() as session:
        assert get_device(session, device_id=device.device_id).revoked_at is None  # type: ignore[union-attr]
        assert [t.outlet_id for t in list_tokens(session)] == ["outlet-1"]  # only the one the device enrolled with
    assert console.state.policies.current.version == 1
    assert len([a for a in actions_of(console, "vera") if a[1] == "denied"]) == 5


def test_an_analyst_triages_but_cannot_create_tokens_or_publish(console: ConsoleHq) -> None:
    analyst = console.browser("analyst")
    assert analyst.post("/console/tokens", {"outlet": "o1"}).status_code == 403
    assert analyst.post("/console/policies", {"body": "{}"}).status_code == 403
    assert "Create a token" not in analyst.get("/console/tokens").text


def test_disabling_an_analyst_ends_their_session_at_once(console: ConsoleHq) -> None:
    browser = console.browser("viewer")
    with console.state.sessions.begin() as session:
        session.execute(update(Analyst).values(disabled_at=time.time()))
    assert browser.get("/console/", follow_redirects=False).status_code == 303


def test_an_idle_session_expires(console: ConsoleHq) -> None:
    browser = console.browser("viewer")
    with console.state.sessions.begin() as session:
        session.execute(update(ConsoleSession).values(last_seen=time.time() - IDLE_S - 1))
    assert browser.get("/console/", follow_redirects=False).status_code == 303
    with console.state.sessions() as session:
        assert session.scalars(select(ConsoleSession)).all() == []


def test_sign_out_ends_the_session(console: ConsoleHq) -> None:
    browser = console.browser("viewer")
    assert browser.post("/console/logout").status_code == 303
    assert browser.get("/console/", follow_redirects=False).status_code == 303
    assert ("logout", "ok") in actions_of(console, "vera")


def test_pages_carry_a_strict_content_security_policy(console: ConsoleHq) -> None:
    browser = console.browser("viewer")
    response = browser.get("/console/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"
    assert "<script>" not in response.text and " style=" not in response.text
    assert 'src="http' not in response.text and 'href="http' not in response.text  # no asset from outside


def test_token_secret_is_shown_once_and_never_rendered_again(console: ConsoleHq) -> None:
    admin = console.browser("admin")
    created = admin.post("/console/tokens", {"outlet": "0571-XH", "uses": "3", "ttl": "48h"})
    assert created.status_code == 200
    token = created.text.split('id="token-value" aria-label="the new token"')[0].rsplit('value="', 1)[1].split('"')[0]
    assert len(token) >= 30
    assert created.headers["cache-control"] == "no-store"
    with console.state.sessions() as session:
        stored = list_tokens(session)
    assert [(t.outlet_id, t.uses_total) for t in stored] == [("0571-XH", 3)]
    for path in ["/console/tokens", "/console/audit", "/console/"]:
        page = admin.get(path).text
        assert token not in page and stored[0].token_hash not in page
    from tests.hq.device_client import DeviceClient

    assert DeviceClient(console.hq.client).enroll(token).status_code == 200


def test_keys_and_secrets_are_never_rendered(console: ConsoleHq) -> None:
    device = console.hq.device()
    assert device.heartbeat().status_code == 200
    admin = console.browser("admin")
    with console.state.sessions() as session:
        row = get_device(session, device_id=device.device_id)
        assert row is not None
        public_key = row.public_key
        session_hashes = list(session.scalars(select(ConsoleSession.token_hash)))
        password_hash = session.scalar(select(Analyst.password_hash).where(Analyst.id == "ada"))
    from cryptography.hazmat.primitives import serialization

    policy_private = console.state.policy_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    ).hex()
    pages = [admin.get(p).text for p in ["/console/", "/console/devices", f"/console/devices/{device.device_id}",
                                         "/console/policies", "/console/audit", "/console/tokens", "/console/alerts"]]
    for page in pages:
        for secret in [public_key, *session_hashes, str(password_hash), policy_private, PASSWORD]:
            assert secret not in page
