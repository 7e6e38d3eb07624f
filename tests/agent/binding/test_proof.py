"""Per-request proofs: made by the device key, parsed under hostile input, URLs normalised."""

from __future__ import annotations

import base64
import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.binding.proof import (
    Proof,
    ProofError,
    make_proof,
    normalize_htu,
    parse_proof,
    proof_signed_by,
    token_hash,
)
from agent.signing import b64url

KEY = Ed25519PrivateKey.generate()
TOKEN = "header.payload.mac"
URL = "https://Waybill.Example:443/outlets/o1/waybills/WB0000000001?from=list#top"


def test_a_proof_carries_method_url_time_jti_and_token_hash_and_verifies() -> None:
    now = time.time()
    proof = parse_proof(make_proof(KEY, device_id="dev-1", token=TOKEN, method="get", url=URL, now=now))
    assert (proof.device_id, proof.htm, proof.iat) == ("dev-1", "GET", int(now))
    assert proof.htu == "https://waybill.example/outlets/o1/waybills/WB0000000001"
    assert proof.ath == token_hash(TOKEN) and len(proof.jti) >= 16
    assert proof_signed_by(KEY.public_key(), proof)
    assert not proof_signed_by(Ed25519PrivateKey.generate().public_key(), proof)


def test_two_proofs_for_the_same_request_differ() -> None:
    first = make_proof(KEY, device_id="d", token=TOKEN, method="GET", url=URL, now=1.0)
    assert first != make_proof(KEY, device_id="d", token=TOKEN, method="GET", url=URL, now=1.0)


@pytest.mark.parametrize(("url", "expected"), [
    ("http://127.0.0.1:8600/a", "http://127.0.0.1:8600/a"),
    ("http://h:80/a", "http://h/a"),
    ("HTTPS://H", "https://h/"),
    ("https://[::1]:8443/x?y", "https://[::1]:8443/x"),
])
def test_urls_are_normalised_like_dpop_htu(url: str, expected: str) -> None:
    assert normalize_htu(url) == expected


@pytest.mark.parametrize("url", ["ftp://h/x", "/relative", "https://", "https://h:99999/", "x" * 3000, "http://[::1"])
def test_unusable_urls_are_refused_with_a_reason(url: str) -> None:
    with pytest.raises(ProofError, match="url"):
        normalize_htu(url)


def test_an_unknown_method_is_refused() -> None:
    with pytest.raises(ProofError, match="method"):
        make_proof(KEY, device_id="d", token=TOKEN, method="BREW", url=URL, now=1.0)


def parse_or_none(text: str) -> Proof | None:
    try:
        return parse_proof(text)
    except ProofError:
        return None


@settings(max_examples=400)
@given(st.text(max_size=3000))
def test_arbitrary_text_is_refused_cleanly(text: str) -> None:
    parse_or_none(text)


def segment(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                               max_size=3), max_leaves=15)


@settings(max_examples=400)
@given(st.dictionaries(st.sampled_from(["alg", "typ", "kid", "x"]), JSON, max_size=4),
       st.dictionaries(st.sampled_from(["htm", "htu", "iat", "jti", "ath", "y"]), JSON, max_size=6),
       st.binary(min_size=0, max_size=80))
def test_hostile_headers_and_payloads_parse_to_a_typed_proof_or_a_proof_error(header: dict, payload: dict,
                                                                              signature: bytes) -> None:
    sig = base64.urlsafe_b64encode(signature).rstrip(b"=").decode() or "A"
    proof = parse_or_none(f"{segment(header)}.{segment(payload)}.{sig}")
    if proof is not None:
        assert isinstance(proof.iat, int) and not isinstance(proof.iat, bool)
        assert all(isinstance(v, str) for v in (proof.device_id, proof.htm, proof.htu, proof.jti, proof.ath))
        assert len(proof.signature) == 64


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=400), st.characters(codec="ascii"))
def test_a_changed_character_never_passes_the_signature(position: int, char: str) -> None:
    good = make_proof(KEY, device_id="dev-1", token=TOKEN, method="GET", url=URL, now=1_700_000_000)
    position %= len(good)
    mutated = good[:position] + char + good[position + 1:]
    proof = parse_or_none(mutated)
    if proof is not None and mutated != good:
        same = parse_proof(good)
        signed_same = (proof.signing_input, proof.signature) == (same.signing_input, same.signature)
        assert signed_same or not proof_signed_by(KEY.public_key(), proof)


def test_huge_and_deep_segments_are_refused() -> None:
    assert parse_or_none("a." * 2000) is None
    deep = b64url(b"[" * 5000)
    assert parse_or_none(f"{deep}.{deep}.{'A' * 86}") is None


@pytest.mark.parametrize("where", [0, 1, 2])
def test_a_segment_with_anything_after_its_base64url_is_refused(where: int) -> None:
    parts = make_proof(KEY, device_id="dev-1", token=TOKEN, method="GET", url=URL, now=1_700_000_000).split(".")
    parts[where] += "\n"
    assert parse_or_none(".".join(parts)) is None
