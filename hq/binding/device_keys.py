"""Device keys in the two forms session binding needs: the RFC 7638 thumbprint a token is bound
to (``cnf.jkt``) and a verifier for the proof signatures, each made once per key.

Proof signatures are checked with libsodium (PyNaCl) rather than `cryptography`'s OpenSSL: the
same Ed25519 (RFC 8032) check at about half the cost (~52 µs against ~105 µs here), and verify
pays it on every business request, where it is most of the CPU. libsodium is also the stricter
of the two: besides everything OpenSSL refuses (a non-canonical S, a point that does not decode,
a wrong signature) it refuses small-order keys and R values, so it accepts nothing OpenSSL would
refuse (tests/hq/binding/test_device_keys.py checks the two agree on honest and altered proofs).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from agent.binding.proof import Proof
from agent.signing import jwk_thumbprint, public_key_text
from hq.heartbeats import LiveDevice


@dataclass(frozen=True, slots=True)
class DeviceKey:
    public_key: Ed25519PublicKey  # what the entry was made from (see DeviceKeys.of)
    thumbprint: str
    verifier: VerifyKey

    def signed(self, proof: Proof) -> bool:
        """Whether this key made the proof's signature."""
        try:
            self.verifier.verify(proof.signing_input, proof.signature)
        except BadSignatureError:
            return False
        return True


def device_key(public_key: Ed25519PublicKey) -> DeviceKey:
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return DeviceKey(public_key=public_key, thumbprint=jwk_thumbprint(public_key_text(public_key)),
                     verifier=VerifyKey(raw))


class DeviceKeys:
    """By device id. An entry is used only while the device's key is the very object it was made
    from: a device reloaded from the database (or enrolled again under its id) gets a fresh one,
    so a cached verifier can never outlive the key HQ holds."""

    def __init__(self) -> None:
        self._by_device: dict[str, DeviceKey] = {}

    def of(self, device: LiveDevice) -> DeviceKey:
        key = self._by_device.get(device.device_id)
        if key is None or key.public_key is not device.public_key:
            key = self._by_device[device.device_id] = device_key(device.public_key)
        return key
