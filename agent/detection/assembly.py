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
from agent.detection.exports_worker import ExportScanner
from agent.detection.pipeline import Detection, RulesLoader
from agent.detection.respond import Responder
from agent.exports.sensor import ExportSensor
from agent.exports.volumes import default_volumes, default_watch_folders
from agent.policy import CurrentPolicy
from agent.rules import RuleSet, builtin_texts
from agent.sensors.network import NetworkSensor
from agent.sensors.observations import FileWritten
from agent.sensors.process import ProcessSensor
from agent.sensors.sessions import SessionSensor
from agent.spool import Spool
from agent.workers import Worker

log = logging.getLogger(__name__)

PROCESS_INTERVAL_S = 0.2  # new processes seen within 250 ms at about half the CPU of 0.1 s


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


def rules_loader(texts: tuple[str, ...]) -> RuleSet:
    """Built-in rules plus the policy's; a bad policy rule is refused alone, with its reason logged."""
    named = [*builtin_texts(), *((f"policy.rules[{i}]", text) for i, text in enumerate(texts))]
    rules, errors = RuleSet.from_texts(named)
    for error in errors:
        log.error("rule refused: %s", error)
    return rules


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
                    load_rules: RulesLoader = rules_loader) -> DetectionStack:
    respond = Responder(spool, alerts)
    detection = Detection(policy=policy, load_rules=load_rules, respond=respond)
    inbox: queue.Queue[FileWritten] = queue.Queue(1000)
    scanner = ExportScanner(inbox, policy=policy, respond=respond)
    network = NetworkSensor(detection.submit, protected_hosts=policy.body.protected_hosts)
    detection.on_policy(lambda body: network.set_hosts(body.protected_hosts))
    export_sensor = ExportSensor(watch_folders(config), inbox, volumes=default_volumes())
    stack = DetectionStack(detection=detection, export_sensor=export_sensor)
    stack.components = [
        ("detection", Worker("detection", detection.run)),
        ("export-scan", Worker("export-scan", scanner.run)),
        ("process", _PrimedProcessSensor(ProcessSensor(detection.submit, interval_s=PROCESS_INTERVAL_S))),
        ("network", network),
        ("sessions", SessionSensor(detection.submit)),
        ("exports", export_sensor),
    ]
    return stack
