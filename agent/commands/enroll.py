"""`terminal-guard enroll`: make the device key, register it with HQ, pin HQ's CA and policy key."""

from __future__ import annotations

import os
import platform as pyplatform
import shutil
import socket
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.commands.common import CommandError
from agent.config import AgentConfig
from agent.enrollment import CA_FILE, Enrollment, EnrollmentError
from agent.hqclient import HqError, enroll
from agent.keystore import KeystoreUnavailable, open_keystore


def read_token(token: str | None, token_file: str | None) -> str:
    if token_file:
        try:
            token = Path(token_file).read_text("utf-8").strip()
        except OSError as exc:
            raise CommandError(f"{token_file}: cannot read the enrollment token: {exc}") from exc
    token = token or os.environ.get("TG_ENROLL_TOKEN", "")
    if not token:
        raise CommandError("no enrollment token: give --token, --token-file or TG_ENROLL_TOKEN")
    return token.strip()


def pin_ca(ca: str | None, state_dir: Path) -> str | None:
    """Copy the HQ CA into the agent's state so the pin survives the installer's temp files."""
    if ca is None:
        return None
    source = Path(ca)
    try:
        certs = x509.load_pem_x509_certificates(source.read_bytes())
    except (OSError, ValueError) as exc:
        raise CommandError(f"{ca}: not a readable PEM CA certificate: {exc}") from exc
    if not certs:
        raise CommandError(f"{ca}: no certificate in the file")
    target = state_dir / CA_FILE
    if source.resolve() != target.resolve():
        shutil.copyfile(source, target)
    return str(target)


def run_enroll(config: AgentConfig, *, hq_url: str, token: str, ca: str | None, force: bool) -> Enrollment:
    state_dir = config.agent.state_dir
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        existing = Enrollment.load(state_dir)
    except EnrollmentError:
        existing = None
    if existing is not None and not force:
        raise CommandError(f"already enrolled as device {existing.device_id} with {existing.hq_url}; "
                           "use --force to enroll again")
    try:
        keystore = open_keystore(config.keystore, config_file=config.source)
        keystore.check()
    except KeystoreUnavailable as exc:
        raise CommandError(f"keystore: {exc}") from exc
    ca_file = pin_ca(ca or (str(config.hq.ca_file) if config.hq.ca_file else None), state_dir)
    key = Ed25519PrivateKey.generate()
    try:
        answer = enroll(hq_url, token=token, key=key, ca_file=ca_file, timeout_s=config.hq.timeout_s,
                        hostname=socket.gethostname(), os_name=f"{pyplatform.system()} {pyplatform.release()}")
    except HqError as exc:
        raise CommandError(f"enrollment with {hq_url} failed: {exc}") from exc
    keystore.save(key)
    enrollment = Enrollment(device_id=answer.device_id, outlet_id=answer.outlet_id, hq_url=hq_url,
                            ca_file=ca_file, policy_public_key=answer.policy_public_key, enrolled_at=time.time())
    enrollment.save(state_dir)
    return enrollment
