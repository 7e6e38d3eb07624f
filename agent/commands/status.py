"""`terminal-guard status`: what the service last reported, read from its state folder."""

from __future__ import annotations

from typing import Any

import psutil

from agent.config import AgentConfig
from agent.enrollment import Enrollment, EnrollmentError
from agent.service import open_spool
from agent.status_file import StatusFile


def _running(status: dict[str, Any]) -> bool:
    pid = status.get("pid")
    if not status.get("running") or not isinstance(pid, int):
        return False
    try:
        return psutil.Process(pid).is_running()
    except psutil.Error:
        return False


def collect_status(config: AgentConfig) -> dict[str, Any]:
    state_dir = config.agent.state_dir
    try:
        enrollment = Enrollment.load(state_dir)
        enrollment_error = None
    except EnrollmentError as exc:
        enrollment, enrollment_error = None, str(exc)
    status = StatusFile.read(state_dir)
    spool = open_spool(config)
    try:
        depth, losses = spool.depth(), spool.losses()
    finally:
        spool.close()
    return {
        "enrolled": enrollment is not None,
        "device_id": enrollment.device_id if enrollment else None,
        "outlet_id": enrollment.outlet_id if enrollment else None,
        "hq_url": enrollment.hq_url if enrollment else None,
        "running": _running(status),
        "hq_reachable": status.get("hq_reachable"),
        "last_heartbeat": status.get("last_heartbeat"),
        "last_error": status.get("last_error") or enrollment_error,
        "revoked": bool(status.get("revoked")),
        "spool_depth": depth,
        "lost_events": losses,
        "policy_version": status.get("policy_version"),
        "policy_error": status.get("policy_error"),
        "staff": status.get("staff"),
        "last_signout": status.get("last_signout"),
        "screen_lock": status.get("screen_lock"),
        "exports_mode": status.get("exports_mode"),
        "sensor_failures": status.get("sensor_failures") or [],
        "agent_version": status.get("agent_version"),
    }
