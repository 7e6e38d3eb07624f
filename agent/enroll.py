"""Enrollment: make the device key, register it with HQ, pin HQ's CA and policy key — and leave.

Used by `terminal-guard enroll`, by the service on first start when an installer preseeded a
token file, and by `terminal-guard unenroll` when the agent is uninstalled.
"""

from __future__ import annotations

import os
import platform as pyplatform
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.config import AgentConfig
from agent.enrollment import CA_FILE, Enrollment, EnrollmentError
from agent.hqclient import HqClient, HqError, enroll
from agent.keystore import KeystoreUnavailable, open_keystore


def read_token(token: str | None, token_file: str | None) -> str:
    if token_file:
        try:
            token = Path(token_file).read_text("utf-8").strip()
        except OSError as exc:
            raise EnrollmentError(f"{token_file}: cannot read the enrollment token: {exc}") from exc
    token = token or os.environ.get("TG_ENROLL_TOKEN", "")
    if not token:
        raise EnrollmentError("no enrollment token: give --token, --token-file or TG_ENROLL_TOKEN")
    return token.strip()


def pin_ca(ca: str | None, state_dir: Path) -> str | None:
    """Copy the HQ CA into the agent's state so the pin survives the installer's temp files."""
    if ca is None:
        return None
    source = Path(ca)
    try:
        certs = x509.load_pem_x509_certificates(source.read_bytes())
    except (OSError, ValueError) as exc:
        raise EnrollmentError(f"{ca}: not a readable PEM CA certificate: {exc}") from exc
    if not certs:
        raise EnrollmentError(f"{ca}: no certificate in the file")
    target = state_dir / CA_FILE
    if source.resolve() != target.resolve():
        shutil.copyfile(source, target)
    return str(target)


def enroll_device(config: AgentConfig, *, hq_url: str, token: str, ca: str | None, force: bool) -> Enrollment:
    state_dir = config.agent.state_dir
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        existing = Enrollment.load(state_dir)
    except EnrollmentError:
        existing = None
    if existing is not None and not force:
        raise EnrollmentError(f"already enrolled as device {existing.device_id} with {existing.hq_url}; "
                           "use --force to enroll again")
    try:
        keystore = open_keystore(config.keystore, config_file=config.source)
        keystore.check()
    except KeystoreUnavailable as exc:
        raise EnrollmentError(f"keystore: {exc}") from exc
    ca_file = pin_ca(ca or (str(config.hq.ca_file) if config.hq.ca_file else None), state_dir)
    key = Ed25519PrivateKey.generate()
    try:
        answer = enroll(hq_url, token=token, key=key, ca_file=ca_file, timeout_s=config.hq.timeout_s,
                        hostname=socket.gethostname(), os_name=f"{pyplatform.system()} {pyplatform.release()}")
    except HqError as exc:
        raise EnrollmentError(f"enrollment with {hq_url} failed: {exc}") from exc
    if config.agent.outlet_id and answer.outlet_id != config.agent.outlet_id:
        raise EnrollmentError(f"HQ enrolled this PC for outlet {answer.outlet_id!r} but the config says "
                              f"{config.agent.outlet_id!r}; ask HQ for a token of the right outlet")
    keystore.save(key)
    enrollment = Enrollment(device_id=answer.device_id, outlet_id=answer.outlet_id, hq_url=hq_url,
                            ca_file=ca_file, policy_public_key=answer.policy_public_key, enrolled_at=time.time())
    enrollment.save(state_dir)
    return enrollment


def enroll_from_preseed(config: AgentConfig) -> Enrollment | None:
    """First start after a silent install: enroll with the preseeded URL and token file, then delete it."""
    token_file = config.hq.enroll_token_file
    if not config.hq.url or token_file is None or not token_file.exists():
        return None
    token = read_token(None, str(token_file))
    enrollment = enroll_device(config, hq_url=config.hq.url, token=token, ca=None, force=False)
    token_file.unlink(missing_ok=True)
    return enrollment


def unenroll_device(config: AgentConfig, client_factory: Callable[[Enrollment], HqClient]) -> tuple[bool, str]:
    """Tell HQ this PC is leaving, then forget the identity. Returns (HQ was told, detail)."""
    enrollment = Enrollment.load(config.agent.state_dir)
    if enrollment is None:
        raise EnrollmentError("this PC is not enrolled")
    try:
        client = client_factory(enrollment)
        try:
            client.request("POST", "/v1/unenroll", {"reason": "uninstalled"})
        finally:
            client.close()
        told, detail = True, f"HQ {enrollment.hq_url} recorded the removal of device {enrollment.device_id}"
    except (HqError, KeystoreUnavailable) as exc:
        told, detail = False, f"HQ was not told ({exc}); its silent-PC alert will fire instead"
    keystore = open_keystore(config.keystore, config_file=config.source)
    keystore.delete()
    Enrollment.remove(config.agent.state_dir)
    return told, detail
