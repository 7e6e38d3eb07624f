"""`terminal-guard doctor`: check what the agent depends on and say how to fix each failure."""

from __future__ import annotations

import os
import socket
import ssl
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from agent.config import AgentConfig
from agent.device import device_client, request_sequence
from agent.enrollment import Enrollment, EnrollmentError
from agent.hqclient import HqError
from agent.keystore import KeystoreUnavailable, open_keystore

CLOCK_TOLERANCE_S = 60.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def check_state_dir(config: AgentConfig) -> Check:
    path = config.agent.state_dir
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = path / ".doctor-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return Check("state_dir", False, f"{path}: not writable: {exc}",
                     f"create {path} owned by the agent's account, or set [agent] state_dir")
    mode = stat.S_IMODE(path.stat().st_mode)
    if os.name == "posix" and mode & 0o022:
        return Check("state_dir", False, f"{path}: writable by others (mode {mode:o})", f"chmod 700 {path}")
    return Check("state_dir", True, f"{path} (mode {mode:o})")


def check_keystore(config: AgentConfig) -> Check:
    try:
        keystore = open_keystore(config.keystore, config_file=config.source)
        keystore.check()
    except KeystoreUnavailable as exc:
        return Check("keystore", False, str(exc), "see the message: configure [keystore] backend")
    return Check("keystore", True, f"backend {keystore.name}")


def check_enrollment(config: AgentConfig) -> tuple[Check, Enrollment | None]:
    try:
        enrollment = Enrollment.load(config.agent.state_dir)
    except EnrollmentError as exc:
        return Check("enrollment", False, str(exc), "terminal-guard enroll --force --hq URL --token T --ca FILE"), None
    if enrollment is None:
        return Check("enrollment", False, "this PC is not enrolled",
                     "terminal-guard enroll --hq URL --token TOKEN --ca HQ-CA.pem"), None
    return Check("enrollment", True, f"device {enrollment.device_id}, outlet {enrollment.outlet_id}"), enrollment


def check_tls_pin(enrollment: Enrollment, timeout_s: float) -> Check:
    parts = urlsplit(enrollment.hq_url)
    if parts.scheme != "https":
        return Check("hq_tls", True, f"{enrollment.hq_url} is loopback HTTP (no TLS to pin)")
    if not enrollment.ca_file or not Path(enrollment.ca_file).exists():
        return Check("hq_tls", False, f"pinned CA file missing: {enrollment.ca_file}",
                     "enroll again with --ca pointing at HQ's ca.pem")
    context = ssl.create_default_context(cafile=enrollment.ca_file)
    host, port = parts.hostname or "", parts.port or 443
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock, \
                context.wrap_socket(sock, server_hostname=host):
            pass
    except ssl.SSLError as exc:
        return Check("hq_tls", False, f"{host}:{port} does not present a certificate from the pinned CA: {exc}",
                     "check that the URL is HQ's and the CA is HQ's ca.pem; a proxy intercepting TLS is refused")
    except OSError as exc:
        return Check("hq_tls", False, f"{host}:{port} unreachable: {exc}", "check network, firewall and HQ URL")
    return Check("hq_tls", True, f"{host}:{port} presents a certificate from the pinned CA")


def check_clock_and_signing(config: AgentConfig, enrollment: Enrollment) -> Check:
    try:
        keystore = open_keystore(config.keystore, config_file=config.source)
        client = device_client(config, enrollment, keystore, request_sequence(config))
    except (KeystoreUnavailable, EnrollmentError, HqError) as exc:
        return Check("hq_auth", False, str(exc), "configure the keystore, or enroll again with --force")
    try:
        before = time.time()
        answer = client.request("GET", "/v1/policy")
    except HqError as exc:
        return Check("hq_auth", False, f"signed request refused or failed: {exc}",
                     "a revoked or unknown device must be enrolled again; otherwise check HQ")
    finally:
        client.close()
    skew = float(answer.get("server_time", before)) - before
    if abs(skew) > CLOCK_TOLERANCE_S:
        return Check("clock", False, f"clock differs from HQ by {skew:+.0f} s",
                     "enable time synchronisation (w32time / systemd-timesyncd)")
    return Check("hq_auth", True, f"signed request accepted; clock offset {skew:+.1f} s")


def run_doctor(config: AgentConfig, *, as_json: bool) -> int:
    """Exit 0 when every check passes, 1 when any fails (each failure says how to fix it)."""
    from agent.commands.common import emit

    source = str(config.source) if config.source else "defaults (no config file)"
    checks = [Check("config", True, source), check_state_dir(config), check_keystore(config)]
    enrollment_check, enrollment = check_enrollment(config)
    checks.append(enrollment_check)
    if enrollment is not None:
        tls = check_tls_pin(enrollment, config.hq.timeout_s)
        checks.append(tls)
        if tls.ok and checks[2].ok:
            checks.append(check_clock_and_signing(config, enrollment))
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        text = f"{mark} {check.name}: {check.detail}" + ("" if check.ok else f"\n     fix: {check.fix}")
        emit({"check": check.name, "ok": check.ok, "detail": check.detail, "fix": check.fix or None},
             as_json=as_json, text=text)
    return 0 if all(check.ok for check in checks) else 1
