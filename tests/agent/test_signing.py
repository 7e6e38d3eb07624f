import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.signing import (
    SignatureError,
    jwk_thumbprint,
    load_public_key,
    parse_signed_headers,
    public_key_text,
    sign_request,
    verify_request,
)

KEY = Ed25519PrivateKey.generate()


def signed(**overrides):
    args = {"method": "POST", "path": "/v1/events", "body": b'{"a":1}', "device_id": "dev-1", "seq": 7,
            "timestamp": 1_700_000_000}
    args.update(overrides)
    return sign_request(KEY, **args)


def test_a_signed_request_verifies_with_the_signers_public_key():
    headers = signed()
    verify_request(load_public_key(public_key_text(KEY)), parse_signed_headers(headers),
                   method="POST", path="/v1/events", body=b'{"a":1}')


@pytest.mark.parametrize("field,value", [
    ("method", "PUT"), ("path", "/v1/heartbeat"), ("body", b'{"a":2}'),
])
def test_changing_what_was_signed_breaks_the_signature(field, value):
    headers = signed()
    request = {"method": "POST", "path": "/v1/events", "body": b'{"a":1}', field: value}
    with pytest.raises(SignatureError):
        verify_request(KEY.public_key(), parse_signed_headers(headers), **request)


@pytest.mark.parametrize("header,value", [
    ("X-TG-Seq", "8"), ("X-TG-Timestamp", "1700000001"), ("X-TG-Device", "dev-2"), ("X-TG-Nonce", "another-nonce"),
])
def test_changing_a_signed_header_breaks_the_signature(header, value):
    headers = signed()
    headers[header] = value
    with pytest.raises(SignatureError):
        verify_request(KEY.public_key(), parse_signed_headers(headers), method="POST", path="/v1/events",
                       body=b'{"a":1}')


def test_another_key_does_not_verify():
    with pytest.raises(SignatureError):
        verify_request(Ed25519PrivateKey.generate().public_key(), parse_signed_headers(signed()),
                       method="POST", path="/v1/events", body=b'{"a":1}')


def test_missing_or_malformed_headers_are_named():
    headers = signed()
    del headers["X-TG-Nonce"]
    with pytest.raises(SignatureError, match="X-TG-Nonce"):
        parse_signed_headers(headers)
    with pytest.raises(SignatureError, match="integers"):
        parse_signed_headers({**signed(), "X-TG-Seq": "seven"})


def test_thumbprint_is_stable_and_key_specific():
    text = public_key_text(KEY)
    assert jwk_thumbprint(text) == jwk_thumbprint(text)
    assert jwk_thumbprint(text) != jwk_thumbprint(public_key_text(Ed25519PrivateKey.generate()))
