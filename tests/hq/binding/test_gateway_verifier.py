"""The embeddable gateway verifier against a real HQ server on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.binding.documents import ack_document, binding_document, signed
from agent.binding.proof import make_proof
from agent.localchannel.default_policy import default_policy_text
from hq.binding.gateway import GatewayVerifier
from tests.agent.binding.live_hq import PASSWORD, LiveHq, live_hq

URL = "https://waybill.example/outlets/o1/waybills/WB0000000001"


@pytest.fixture
def hq(tmp_path: Path) -> Iterator[LiveHq]:
    with live_hq(tmp_path) as server:
        server.staff("S001")
        yield server


def signed_in(hq: LiveHq) -> tuple[str, Ed25519PrivateKey, str]:
    client, key = hq.device("o1")
    challenge = client.request("POST", "/v1/session/challenge")["challenge"]
    digest = default_policy_text()["hash"]
    answer = client.request("POST", "/v1/session/signin", {
        "staff": "S001", "password": PASSWORD, "policy_hash": digest,
        "binding": signed(key, binding_document(staff="S001", device=client.device_id, outlet="o1",
                                                challenge=challenge, iat=int(time.time()))),
        "acknowledgement": signed(key, ack_document(staff="S001", device=client.device_id, outlet="o1",
                                                    policy_hash=digest, policy_version=1,
                                                    acknowledged_at=time.time()))})
    return client.device_id, key, answer["token"]


def test_allow_deny_and_reports_through_the_embedded_verifier(hq: LiveHq) -> None:
    device_id, key, token = signed_in(hq)
    verifier = GatewayVerifier(hq.url, key=hq.gateway_key(), ca_file=None)
    try:
        proof = make_proof(key, device_id=device_id, token=token, method="GET", url=URL, now=time.time())
        headers = {"X-TG-Session": token, "X-TG-Proof": proof}
        decision = verifier.verify("GET", URL, headers, outlet="o1")
        assert decision.allow and decision.staff == "S001" and decision.device == device_id
        assert verifier.verify("GET", URL, headers, outlet="o1").reason == "replayed_proof"
        assert verifier.verify("GET", URL, {}).reason == "missing_token"
        assert verifier.verify("GET", URL, {"X-TG-Session": "x" * 5000}).reason == "malformed_token"
        for _ in range(3):
            verifier.report_query(decision, waybill_outlet="o2")
        verifier.flush()
        stats = hq.binding.baselines.stats("S001")
        assert stats is not None and stats.queries == 3 and stats.other == 3
    finally:
        verifier.close()


def test_a_wrong_key_or_an_absent_hq_fails_closed(hq: LiveHq) -> None:
    wrong = GatewayVerifier(hq.url, key="tgw_not_a_key", ca_file=None)
    absent = GatewayVerifier("http://127.0.0.1:9", key="k", ca_file=None, timeout_s=0.5)
    try:
        assert wrong.verify("GET", URL, {"X-TG-Session": "a.b.c"}).reason == "gateway_key_refused"
        decision = absent.verify("GET", URL, {"X-TG-Session": "a.b.c"})
        assert not decision.allow and decision.reason == "hq_unavailable"
    finally:
        wrong.close()
        absent.close()
