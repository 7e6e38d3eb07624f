"""Session tokens under hostile input: whatever arrives, parse_token answers claims or TokenError."""

from __future__ import annotations

import base64
import json
import secrets

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.signing import b64url
from hq.binding.tokens import BAD_MAC, MALFORMED, SessionClaims, TokenError, _mac, issue_token, parse_token

KEY = secrets.token_bytes(32)
CLAIMS = SessionClaims(sid="a" * 32, staff="S001", device="dev-1", outlet="o1", iat=1_700_000_000,
                       exp=1_700_000_600, jkt="A" * 43, ack=True)
TOKEN = issue_token(KEY, CLAIMS)
HEADER = TOKEN.split(".")[0]
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20)


def parse_or_error(text: str) -> SessionClaims | None:
    try:
        return parse_token(KEY, text)
    except TokenError as exc:
        assert exc.reason in (MALFORMED, BAD_MAC)
        return None


def test_a_token_round_trips_and_another_key_refuses_it() -> None:
    assert parse_token(KEY, TOKEN) == CLAIMS
    assert parse_or_error(TOKEN) == CLAIMS
    try:
        parse_token(secrets.token_bytes(32), TOKEN)
    except TokenError as exc:
        assert exc.reason == BAD_MAC
    else:
        raise AssertionError("a token of another HQ was accepted")


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=3000) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_arbitrary_text_is_refused_cleanly(text: str) -> None:
    assert parse_or_error(text) is None


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=len(TOKEN) - 1), st.characters(codec="ascii"))
def test_any_one_character_changed_is_refused(position: int, char: str) -> None:
    mutated = TOKEN[:position] + char + TOKEN[position + 1:]
    if mutated != TOKEN:
        result = parse_or_error(mutated)
        # Base64 padding bits: a change in the last character may decode to the same bytes.
        assert result is None or result == CLAIMS


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(["sid", "sub", "dev", "out", "iat", "exp", "cnf", "ack", "x"]), JSON,
                       max_size=9))
def test_a_payload_with_a_valid_mac_but_hostile_values_is_refused_not_crashed(payload: dict) -> None:
    segment = b64url(json.dumps(payload).encode())
    signing_input = f"{HEADER}.{segment}"
    token = f"{signing_input}.{b64url(_mac(KEY, signing_input.encode()))}"
    result = parse_or_error(token)
    if result is not None:
        assert isinstance(result.iat, int) and isinstance(result.ack, bool)


def test_non_json_and_deep_json_payloads_are_malformed() -> None:
    for raw in (b"\xff\xfe", b"[" * 100_000, b'{"cnf": ' * 50):
        segment = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        signing_input = f"{HEADER}.{segment}"
        token = f"{signing_input}.{b64url(_mac(KEY, signing_input.encode()))}"
        assert parse_or_error(token[:2048]) is None
