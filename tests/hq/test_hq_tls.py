"""The HQ CA and server certificate: made once with private keys at 0600, reused, reissued when needed."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from hq.policy_keys import ensure_policy_key
from hq.tls import ensure_tls


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def sans(path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in san.get_values_for_type(x509.DNSName)} | {
        str(v) for v in san.get_values_for_type(x509.IPAddress)
    }


def test_first_start_makes_a_ca_and_a_server_cert_it_signed(tmp_path: Path) -> None:
    files = ensure_tls(tmp_path / "hq", "127.0.0.1")
    assert mode(files.ca_key) == 0o600 and mode(files.server_key) == 0o600
    assert mode(tmp_path / "hq") == 0o700
    assert {"localhost", "127.0.0.1", "::1", socket.gethostname()} <= sans(files.server_cert)
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)


def test_second_start_reuses_everything(tmp_path: Path) -> None:
    first = ensure_tls(tmp_path, "127.0.0.1")
    before = {p: p.read_bytes() for p in (first.ca_cert, first.ca_key, first.server_cert, first.server_key)}
    ensure_tls(tmp_path, "0.0.0.0")  # noqa: S104 - the wildcard name, nothing binds here
    assert {p: p.read_bytes() for p in before} == before


def test_a_new_bind_address_gets_a_new_server_cert_from_the_same_ca(tmp_path: Path) -> None:
    first = ensure_tls(tmp_path, "127.0.0.1")
    ca_before = first.ca_cert.read_bytes()
    second = ensure_tls(tmp_path, "192.0.2.10")
    assert second.ca_cert.read_bytes() == ca_before
    assert "192.0.2.10" in sans(second.server_cert)


def test_policy_key_is_private_and_stable(tmp_path: Path) -> None:
    key = ensure_policy_key(tmp_path)
    assert mode(tmp_path / "policy-key.pem") == 0o600
    assert ensure_policy_key(tmp_path).public_key() == key.public_key()
