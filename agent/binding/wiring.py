"""Session binding inside the service: device access for sign-in, the periodic worker, the
loopback endpoint. Kept out of service.py so the service stays an assembly of parts."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.binding.loopback import LoopbackEndpoint
from agent.binding.manager import BindingError, BindingManager, DeviceAccess
from agent.binding.peer import default_peer_check
from agent.config import AgentConfig
from agent.device import device_client
from agent.enrollment import Enrollment, EnrollmentError
from agent.events import Event
from agent.hqclient import HqClient, HqError
from agent.keystore import Keystore, KeystoreUnavailable
from agent.localchannel import ops
from agent.localchannel.default_policy import default_policy_text
from agent.platform import Platform
from agent.policy import CurrentPolicy
from agent.sequence import RequestSequence
from agent.status_file import StatusFile

log = logging.getLogger(__name__)

TICK_S = 1.0
# Sign-in waits for HQ while the tray waits for the agent: keep HQ calls of binding short.
BINDING_HQ_TIMEOUT_S = 5.0


class DeviceAccessSource:
    """This PC's HQ client and key for binding calls; one client per enrolled identity."""

    def __init__(self, config: AgentConfig, keystore: Keystore | None, sequence: RequestSequence,
                 status: StatusFile) -> None:
        self._config = replace(config, hq=replace(config.hq, timeout_s=min(config.hq.timeout_s,
                                                                            BINDING_HQ_TIMEOUT_S)))
        self._keystore = keystore
        self._sequence = sequence
        self._status = status
        self._lock = threading.Lock()
        self._cached: tuple[str, HqClient, Ed25519PrivateKey] | None = None

    def __call__(self) -> DeviceAccess:
        state_dir: Path = self._config.agent.state_dir
        try:
            enrollment = Enrollment.load(state_dir)
        except EnrollmentError as exc:
            raise BindingError(ops.ERR_NOT_ENROLLED, str(exc)) from None
        if enrollment is None:
            raise BindingError(ops.ERR_NOT_ENROLLED, "this PC is not enrolled with HQ")
        if self._status.snapshot().get("revoked"):
            raise BindingError(ops.ERR_REVOKED, "HQ revoked this PC")
        with self._lock:
            if self._cached is None or self._cached[0] != enrollment.device_id:
                self._cached = self._open(enrollment)
            _, client, key = self._cached
        return DeviceAccess(client=client, key=key, outlet_id=enrollment.outlet_id)

    def _open(self, enrollment: Enrollment) -> tuple[str, HqClient, Ed25519PrivateKey]:
        if self._keystore is None:
            raise BindingError(ops.ERR_NOT_ENROLLED, "the keystore is unavailable")
        try:
            key = self._keystore.load()
            if key is None:
                raise EnrollmentError("the keystore holds no device key")
            client = device_client(self._config, enrollment, self._keystore, self._sequence)
        except (KeystoreUnavailable, EnrollmentError, HqError) as exc:
            raise BindingError(ops.ERR_NOT_ENROLLED, str(exc)) from None
        return enrollment.device_id, client, key


def build_binding(config: AgentConfig, *, keystore: Keystore | None, sequence: RequestSequence,
                  status: StatusFile, policy: CurrentPolicy, platform: Platform,
                  put_event: Callable[[Event], None]) -> tuple[BindingManager, LoopbackEndpoint]:
    def policy_text() -> dict[str, Any]:
        return {**default_policy_text(), "version": policy.version}

    def on_change(staff: str | None) -> None:
        # `terminal-guard status` reads the file: who is signed in, and why the last one is not.
        status.update(staff=staff, last_signout=manager.last_signout())

    manager = BindingManager(access=DeviceAccessSource(config, keystore, sequence, status), policy=policy,
                             policy_text=policy_text, put_event=put_event, on_change=on_change, platform=platform)

    def console_users() -> set[str]:
        return {s.user for s in platform.user_sessions() if s.user and not s.remote}

    return manager, LoopbackEndpoint(manager, default_peer_check(console_users))


def binding_loop(manager: BindingManager, loopback: LoopbackEndpoint, policy: CurrentPolicy
                 ) -> Callable[[threading.Event], None]:
    """The binding worker: policy-driven sign-out, token refresh, and the loopback endpoint's config."""

    def run(stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                binding = policy.body.binding
                loopback.apply(binding.loopback_port, binding.allowed_origins)
                manager.tick()
                stop.wait(TICK_S)
        finally:
            loopback.stop()

    return run
