"""Builds the detection side of the service: sensors, the detection thread, the export scanner.

A sensor that cannot start is logged and left out (STYLE.md #7); the rest keep running, and
`failures` tells the status and the tray.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from agent.alerts import AlertBook
from agent.config import AgentConfig
from agent.detection.exports_worker import ExportScanner, ScanInbox
from agent.detection.pipeline import Detection, RulesLoader
from agent.detection.respond import Responder
from agent.exports.sensor import ExportSensor
from agent.exports.volumes import default_volumes, default_watch_folders
from agent.exports.writers import default_writers
from agent.policy import CurrentPolicy
from agent.rules import RuleSet, builtin_texts
from agent.rules.isolated import compile_isolated
from agent.sensors.connections import SharedSocketTable, default_socket_table
from agent.sensors.network import NetworkSensor
from agent.sensors.proc_events import ProcessEvents
from agent.sensors.process import ProcessSensor
from agent.sensors.sessions import SessionSensor
from agent.spool import Spool
from agent.workers import Worker, limit_malloc_arenas

log = logging.getLogger(__name__)

# Polling cadence where the kernel's process events are not available (Windows, or not root):
# new processes seen within 250 ms at about half the CPU of 0.1 s. With them, ticks follow events.
PROCESS_INTERVAL_S = 0.2
# The network and session sensors tick every 2 s; one socket listing serves both.
SOCKET_LISTING_MAX_AGE_S = 1.0


class Component(Protocol):
    def start(self) -> None: ...

    def stop(self, timeout: float) -> object: ...


@dataclass
class DetectionStack:
    detection: Detection
    components: list[tuple[str, Component]] = field(default_factory=list)
    export_sensor: ExportSensor | None = None
    failures: list[str] = field(default_factory=list)

    def start(self) -> None:
        started = []
        for name, component in self.components:
            try:
                component.start()
                started.append((name, component))
            except Exception as exc:
                log.exception("sensor %s failed to start and is disabled", name)
                self.failures.append(f"{name}: {exc}")
        self.components = started

    def stop(self, timeout: float) -> None:
        for name, component in self.components:
            if component.stop(timeout) is False:
                log.warning("%s did not stop within %.1f s", name, timeout)


def _named(texts: tuple[str, ...]) -> list[tuple[str, str]]:
    return [*builtin_texts(), *((f"policy.rules[{i}]", text) for i, text in enumerate(texts))]


def rules_loader(texts: tuple[str, ...]) -> RuleSet:
    """Built-in rules plus the policy's, compiled in this process (one-shot commands)."""
    rules, errors = RuleSet.from_texts(_named(texts))
    for error in errors:
        log.error("rule refused: %s", error)
    return rules


def isolated_rules_loader(cache_dir: Path) -> RulesLoader:
    """For the long-running service: compile in a child process so pySigma never occupies its memory."""

    def load(texts: tuple[str, ...]) -> RuleSet:
        rules, errors = compile_isolated(_named(texts), cache_dir=cache_dir)
        for error in errors:
            log.error("rule refused: %s", error)
        return rules

    return load


def watch_folders(config: AgentConfig) -> list[Path]:
    if config.exports.folders:
        return list(config.exports.folders)
    homes = {Path.home()}
    users_root = Path(os.environ.get("SYSTEMDRIVE", "C:") + "\\Users") if sys.platform == "win32" else Path("/home")
    with contextlib.suppress(OSError):
        homes.update(p for p in users_root.iterdir() if p.is_dir())
    return [folder for home in sorted(homes) for folder in default_watch_folders(home)]


class _PrimedProcessSensor:
    """Remember what already runs before the first tick, so only new processes are reported."""

    def __init__(self, sensor: ProcessSensor) -> None:
        self._sensor = sensor

    def start(self) -> None:
        self._sensor.prime()
        self._sensor.start()

    def stop(self, timeout: float) -> object:
        return self._sensor.stop(timeout)


def build_detection(config: AgentConfig, *, policy: CurrentPolicy, spool: Spool, alerts: AlertBook,
                    load_rules: RulesLoader | None = None) -> DetectionStack:
    # Most of the service's threads start here; each would otherwise get a malloc arena of its own.
    limit_malloc_arenas()
    respond = Responder(spool, alerts, responses=lambda: policy.body.responses)
    load_rules = load_rules or isolated_rules_loader(config.agent.state_dir / "rule-cache")
    detection = Detection(policy=policy, load_rules=load_rules, respond=respond)
    inbox: ScanInbox = queue.Queue(1000)
    scanner = ExportScanner(inbox, policy=policy, respond=respond)
    sockets = SharedSocketTable(default_socket_table(), max_age_s=SOCKET_LISTING_MAX_AGE_S)
    network = NetworkSensor(detection.submit, protected_hosts=policy.body.protected_hosts, lister=sockets)
    detection.on_policy(lambda body: network.set_hosts(body.protected_hosts))
    processes = ProcessSensor(detection.submit, interval_s=PROCESS_INTERVAL_S, events=ProcessEvents.open())
    detection.on_rules(lambda rules: processes.set_pe_info(rules.needs_pe_info))
    export_sensor = ExportSensor(watch_folders(config), inbox, volumes=default_volumes(), writers=default_writers())
    stack = DetectionStack(detection=detection, export_sensor=export_sensor)
    stack.components = [
        ("detection", Worker("detection", detection.run, wake=detection.wake)),
        ("export-scan", Worker("export-scan", scanner.run, wake=scanner.wake)),
        ("process", _PrimedProcessSensor(processes)),
        ("network", network),
        ("sessions", SessionSensor(detection.submit, lister=sockets)),
        ("exports", export_sensor),
    ]
    return stack
