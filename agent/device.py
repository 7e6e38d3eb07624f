"""This device's signed HQ client, built from its enrollment, keystore and request sequence."""

from __future__ import annotations

from agent.config import AgentConfig
from agent.enrollment import Enrollment, EnrollmentError
from agent.hqclient import HqClient
from agent.keystore import Keystore
from agent.sequence import RequestSequence

SEQUENCE_FILE = "request-seq"


def request_sequence(config: AgentConfig) -> RequestSequence:
    return RequestSequence(config.agent.state_dir / SEQUENCE_FILE)


def device_client(config: AgentConfig, enrollment: Enrollment, keystore: Keystore,
                  sequence: RequestSequence) -> HqClient:
    """Raises KeystoreUnavailable, EnrollmentError (no key) or HqError (bad URL/pin)."""
    key = keystore.load()
    if key is None:
        raise EnrollmentError(f"enrolled as {enrollment.device_id} but the keystore holds no device key; "
                              "enroll again with --force")
    return HqClient(enrollment.hq_url, device_id=enrollment.device_id, key=key, ca_file=enrollment.ca_file,
                    next_seq=sequence.next, skip_seq=sequence.skip_ahead, timeout_s=config.hq.timeout_s)
