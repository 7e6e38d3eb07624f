"""Device keys as verify uses them: libsodium checks proofs exactly as OpenSSL would, and a
cached key never outlives the key HQ holds for the device."""

from __future__ import annotations

import time
from dataclasses import replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.binding.proof import Proof, make_proof, parse_proof, proof_signed_by
from agent.signing import jwk_thumbprint, public_key_text
from hq.binding.device_keys import DeviceKeys, device_key
from hq.heartbeats import LiveDevice

KEY = Ed25519PrivateKey.generate()
URL = "https://waybill.example/outlets/o1/waybills/WB0000000001"


def live(device_id: str, key: Ed25519PrivateKey) -> LiveDevice:
    return LiveDevice(device_id=device_id, outlet_id="o1", public_key=key.public_key(), revoked=False, last_seq=0,
                      heartbeat_count=0, last_heartbeat=None, silent=False, columns={})


def proof(key: Ed25519PrivateKey = KEY) -> Proof:
    return parse_proof(make_proof(key, device_id="dev-1", token="a.b.c", method="GET", url=URL, now=time.time()))


def test_an_honest_proof_verifies_and_another_pcs_does_not() -> None:
    key = device_key(KEY.public_key())
    assert key.signed(proof())
    assert not key.signed(proof(Ed25519PrivateKey.generate()))
    assert key.thumbprint == jwk_thumbprint(public_key_text(KEY.public_key()))


@settings(max_examples=300)
@given(st.sampled_from(["signing_input", "signature"]), st.integers(min_value=0),
       st.integers(min_value=1, max_value=255))
def test_libsodium_and_openssl_agree_on_every_altered_proof(part: str, position: int, flip: int) -> None:
    honest = proof()
    data = bytearray(getattr(honest, part))
    data[position % len(data)] ^= flip
    altered = replace(honest, **{part: bytes(data)})
    assert device_key(KEY.public_key()).signed(altered) == proof_signed_by(KEY.public_key(), altered)


def test_a_device_whose_key_changes_is_checked_with_its_new_key() -> None:
    keys = DeviceKeys()
    old = live("dev-1", KEY)
    assert keys.of(old).signed(proof()) and keys.of(old) is keys.of(old)
    new_key = Ed25519PrivateKey.generate()
    reloaded = live("dev-1", new_key)  # the same id, enrolled again or reloaded with another key
    assert not keys.of(reloaded).signed(proof(KEY))
    assert keys.of(reloaded).signed(proof(new_key))
    assert keys.of(reloaded).thumbprint == jwk_thumbprint(public_key_text(new_key.public_key()))
