"""`terminal-guard enroll` and `unenroll`."""

from __future__ import annotations

import argparse

from agent.commands.common import CommandError, emit
from agent.config import AgentConfig
from agent.device import device_client, request_sequence
from agent.enroll import enroll_device, read_token, unenroll_device
from agent.enrollment import Enrollment, EnrollmentError
from agent.hqclient import HqClient
from agent.keystore import KeystoreUnavailable, open_keystore


def run_enroll(config: AgentConfig, args: argparse.Namespace) -> int:
    try:
        token = read_token(args.token, args.token_file)
        enrollment = enroll_device(config, hq_url=args.hq, token=token, ca=args.ca, force=args.force)
    except EnrollmentError as exc:
        raise CommandError(str(exc)) from exc
    emit({"device_id": enrollment.device_id, "outlet_id": enrollment.outlet_id, "hq_url": enrollment.hq_url},
         as_json=args.json, text=f"enrolled as device {enrollment.device_id} (outlet {enrollment.outlet_id})")
    return 0


def run_unenroll(config: AgentConfig, *, as_json: bool) -> int:
    def client_factory(enrollment: Enrollment) -> HqClient:
        keystore = open_keystore(config.keystore, config_file=config.source)
        return device_client(config, enrollment, keystore, request_sequence(config))

    try:
        told, detail = unenroll_device(config, client_factory)
    except (EnrollmentError, KeystoreUnavailable) as exc:
        raise CommandError(str(exc)) from exc
    emit({"hq_told": told, "detail": detail}, as_json=as_json, text=detail)
    return 0
