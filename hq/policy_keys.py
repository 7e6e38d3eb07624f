"""The HQ policy signing key (Ed25519): made on first start, kept 0600, its public half pinned by agents."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hq.tls import write_private

POLICY_KEY_FILE = "policy-key.pem"


def policy_key_path(data_dir: Path) -> Path:
    return data_dir / POLICY_KEY_FILE


def load_policy_key(data_dir: Path) -> Ed25519PrivateKey:
    path = policy_key_path(data_dir)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}: no policy key; it is made by the first `terminal-guard-hq serve` with this --data-dir"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: expected an Ed25519 private key")
    return key


def ensure_policy_key(data_dir: Path) -> Ed25519PrivateKey:
    path = policy_key_path(data_dir)
    if path.exists():
        return load_policy_key(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(path, pem)
    return key
