"""Policy: a default version 1, signed on publish, served from memory, verified by the agent's parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.policy import PolicyError, PolicyStore, parse_policy
from hq import commands
from hq.commands import CommandError
from tests.hq.conftest import Hq


def test_default_policy_is_version_1_and_verifies_with_the_enrolled_key(hq: Hq) -> None:
    device = hq.device()
    response = device.policy()
    assert response.status_code == 200, response.text
    data = response.json()
    assert set(data) == {"policy", "signature", "server_time"}
    policy = parse_policy(data["policy"], data["signature"], device.policy_public_key)
    assert policy.version == 1
    assert data["policy"]["body"] == {}


def test_policy_signature_fails_with_another_key(hq: Hq) -> None:
    data = hq.device().policy().json()
    from agent.signing import public_key_text

    with pytest.raises(PolicyError, match="signature"):
        parse_policy(data["policy"], data["signature"], public_key_text(Ed25519PrivateKey.generate()))


def test_published_policy_is_served_signed_and_accepted_by_the_policy_store(hq: Hq, tmp_path: Path) -> None:
    device = hq.device()
    body = {"protected_hosts": ["waybill.example.internal"], "approved_programs": ["chrome.exe"],
            "rules": [], "thresholds": {"export_critical": 500}}
    file = tmp_path / "policy.json"
    file.write_text(json.dumps(body), "utf-8")
    assert commands.policy_publish(hq.state.sessions, data_dir=hq.state.settings.data_dir, path=file) == (
        "published policy version 2"
    )
    assert hq.state.policies.refresh() is True
    beat = device.heartbeat().json()
    assert beat["policy_version"] == 2
    data = device.policy().json()
    store = PolicyStore(tmp_path / "agent-policy.json", device.policy_public_key)
    policy = store.offer(data["policy"], data["signature"], None)
    assert policy.version == 2
    assert policy.body.thresholds.export_critical == 500
    assert policy.body.protected_hosts == ("waybill.example.internal",)


def test_publish_rejects_a_bad_body_naming_the_field(hq: Hq, tmp_path: Path) -> None:
    file = tmp_path / "bad.json"
    file.write_text(json.dumps({"thresholds": {"export_critical": -1}}), "utf-8")
    with pytest.raises(CommandError, match=r"bad\.json: body\.thresholds\.export_critical"):
        commands.policy_publish(hq.state.sessions, data_dir=hq.state.settings.data_dir, path=file)
    assert hq.state.policies.refresh() is False


def test_publish_refuses_a_key_that_did_not_sign_the_current_policy(hq: Hq, tmp_path: Path) -> None:
    file = tmp_path / "p.json"
    file.write_text("{}", "utf-8")
    other_dir = tmp_path / "other"
    from hq.policy_keys import ensure_policy_key

    ensure_policy_key(other_dir)
    with pytest.raises(CommandError, match="did not sign policy version 1"):
        commands.policy_publish(hq.state.sessions, data_dir=other_dir, path=file)


def test_policy_show_prints_the_signed_document(hq: Hq) -> None:
    shown = commands.policy_show(hq.state.sessions)
    assert shown["policy"]["version"] == 1
    parse_policy(shown["policy"], shown["signature"], hq.device().policy_public_key)
