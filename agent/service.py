"""The agent service: assembles sensors, detection, channel and uplink; runs until told to stop;
shuts down in bounded time.

Detection keeps working without HQ and even before enrollment: everything goes to the spool,
and the uplink delivers whenever it has an enrolled identity and a reachable HQ.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

from agent import __version__
from agent.alerts import AlertBook
from agent.backoff import Backoff
from agent.binding.wiring import binding_loop, build_binding
from agent.channel_handlers import ChannelHandlers
from agent.config import AgentConfig
from agent.detection.assembly import build_detection
from agent.device import device_client, request_sequence
from agent.enroll import enroll_from_preseed
from agent.enrollment import Enrollment, EnrollmentError
from agent.events import PRIORITY_HIGH, Event
from agent.heartbeat import HeartbeatSource
from agent.hqclient import HqClient, HqError
from agent.keystore import Keystore, KeystoreUnavailable
from agent.localchannel import ops
from agent.localchannel.server import LocalChannelServer, default_address
from agent.platform import Platform
from agent.policy import CurrentPolicy, PolicyError, PolicyStore
from agent.spool import Spool
from agent.status_file import StatusFile
from agent.uplink import Uplink, UplinkTiming
from agent.workers import Worker

log = logging.getLogger(__name__)

SPOOL_FILE = "spool.sqlite3"
POLICY_FILE = "policy.json"
STOP_BUDGET_S = 10.0


def local_channel_address(config: AgentConfig) -> str:
    return default_address(config.agent.state_dir)


def spool_path(config: AgentConfig) -> Path:
    return config.agent.state_dir / SPOOL_FILE


def open_spool(config: AgentConfig) -> Spool:
    return Spool(spool_path(config), max_bytes=config.spool.max_bytes, max_age_s=config.spool.max_age_s)


def attach_policy(policy: CurrentPolicy, state_dir: Path, enrollment: Enrollment) -> None:
    """Pin the enrollment's HQ policy key; a damaged stored copy is reported and ignored."""
    store = PolicyStore(state_dir / POLICY_FILE, enrollment.policy_public_key)
    try:
        policy.attach(store)
    except PolicyError as exc:
        log.error("stored policy ignored: %s", exc)


class Service:
    def __init__(self, config: AgentConfig, *, platform: Platform, keystore: Keystore | None) -> None:
        self._config = config
        self._platform = platform
        self._keystore = keystore
        self._state_dir = config.agent.state_dir
        # 0711: staff may reach the local channel's socket inside, but not list or read anything.
        self._state_dir.mkdir(parents=True, exist_ok=True, mode=0o711)
        self.spool = open_spool(config)
        self.status = StatusFile(self._state_dir)
        self._sequence = request_sequence(config)
        self.policy = CurrentPolicy(None)
        enrollment = self._enrollment()
        if enrollment is not None:
            attach_policy(self.policy, self._state_dir, enrollment)
        self.binding, loopback = build_binding(config, keystore=keystore, sequence=self._sequence, status=self.status,
                                               policy=self.policy, platform=platform, put_event=self.spool.put)
        self._binding_worker = Worker("binding", binding_loop(self.binding, loopback, self.policy))
        self._screen_locks = platform.screen_lock_watch()
        self._screen_lock_problem: str | None = None
        self.uplink = Uplink(
            connect=self._connect,
            spool=self.spool,
            status=self.status,
            policy=self.policy,
            heartbeats=HeartbeatSource(platform, interval_s=config.agent.heartbeat_interval_s),
            backoff=Backoff(config.uplink.backoff_initial_s, config.uplink.backoff_max_s),
            timing=UplinkTiming(
                heartbeat_interval_s=config.agent.heartbeat_interval_s,
                policy_interval_s=config.agent.policy_interval_s,
                batch_size=config.spool.batch_size,
            ),
            staff=self.binding.staff,
        )
        self._uplink_worker = Worker("uplink", self.uplink.run)
        self.alerts = AlertBook(self._state_dir, self.spool.put, staff=self.binding.staff)
        self.detection = build_detection(config, policy=self.policy, spool=self.spool, alerts=self.alerts)
        handlers = ChannelHandlers(state_dir=self._state_dir, status=self.status, spool=self.spool,
                                   policy=self.policy, alerts=self.alerts, staff=self.binding.staff,
                                   binding=self.binding)
        self._channel = LocalChannelServer(local_channel_address(config), handlers.table())

    def _enrollment(self) -> Enrollment | None:
        try:
            return Enrollment.load(self._state_dir)
        except EnrollmentError as exc:
            log.error("%s", exc)
            return None

    def _enroll_from_preseed(self) -> Enrollment | None:
        try:
            enrollment = enroll_from_preseed(self._config)
        except EnrollmentError as exc:
            log.error("enrollment from the installer's preseed failed (will retry): %s", exc)
            return None
        if enrollment is not None:
            log.info("enrolled as device %s from the installer's preseed", enrollment.device_id)
        return enrollment

    def _connect(self) -> HqClient | None:
        """A signed client for the current enrollment, or None while not enrolled."""
        enrollment = self._enrollment() or self._enroll_from_preseed()
        if enrollment is None:
            return None
        attach_policy(self.policy, self._state_dir, enrollment)
        if self._keystore is None:
            return None
        try:
            return device_client(self._config, enrollment, self._keystore, self._sequence)
        except (KeystoreUnavailable, EnrollmentError, HqError) as exc:
            log.error("cannot talk to HQ: %s", exc)
            return None

    def run(self, stop: threading.Event) -> int:
        self.spool.put(Event("agent.started", {"version": __version__, "host": socket.gethostname()},
                             priority=PRIORITY_HIGH))
        self.status.update(started_at=time.time(), agent_version=__version__, running=True,
                           spool_depth=self.spool.depth(), policy_version=self.policy.version, staff=None)
        log.info("agent %s started; state in %s", __version__, self._state_dir)
        try:
            self._channel.start()
        except OSError as exc:
            log.error("local channel unavailable (the tray cannot reach the agent): %s", exc)
        self.detection.start()
        exports = self.detection.export_sensor
        self.status.update(exports_mode=exports.mode if exports else None,
                           sensor_failures=self._sensor_failures())
        self._uplink_worker.start()
        self._binding_worker.start()
        self._screen_locks.start(self.binding.screen_lock_changed, self._screen_lock_watch_state)
        stop.wait()
        return self.shutdown()

    def _sensor_failures(self) -> list[str]:
        failures = list(self.detection.failures)
        if self._screen_lock_problem is not None:
            failures.append(f"screen_lock: {self._screen_lock_problem}; staff are not signed out when the screen locks")
        return failures

    def _screen_lock_watch_state(self, problem: str | None) -> None:
        # Called by the watch's thread after run() wrote the detection failures, so this write wins.
        self._screen_lock_problem = problem
        self.status.update(screen_lock=problem or "watching", sensor_failures=self._sensor_failures())

    def shutdown(self) -> int:
        """Stop sensors, record the stop, flush what HQ will take in the remaining budget."""
        deadline = time.monotonic() + STOP_BUDGET_S
        self._channel.stop(1.0)
        self._screen_locks.stop(1.0)
        self._binding_worker.stop(2.0)
        self.binding.signout(ops.SIGNOUT_AGENT_STOPPED)  # the token lives in memory only: say so to HQ
        self.detection.stop(max(0.1, deadline - time.monotonic()) / 4)
        self.spool.put(Event("agent.stopped", {"version": __version__, "reason": "service stop"},
                             priority=PRIORITY_HIGH))
        self._uplink_worker.stop(max(0.1, deadline - time.monotonic()) / 2)
        delivered = self.uplink.flush(max(0.0, deadline - time.monotonic()))
        depth = self.spool.depth()
        self.status.update(running=False, spool_depth=depth)
        self.spool.close()
        log.info("agent stopped; %d events delivered at shutdown, %d kept in the spool", delivered, depth)
        return 0
