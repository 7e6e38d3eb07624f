import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.policy import CurrentPolicy, PolicyError, PolicyStore, parse_policy, parse_policy_body
from agent.signing import public_key_text, sign_document

HQ_KEY = Ed25519PrivateKey.generate()
PUBLIC = public_key_text(HQ_KEY)


def document(version=1, body=None):
    doc = {"version": version, "issued_at": "2026-11-23T00:00:00Z", "body": body or {}}
    return doc, sign_document(HQ_KEY, doc)


def test_a_signed_policy_is_accepted_with_defaults():
    policy = parse_policy(*document(body={"protected_hosts": ["waybill.example"]}), PUBLIC)
    assert policy.version == 1
    assert policy.body.protected_hosts == ("waybill.example",)
    assert policy.body.thresholds.export_high_mobiles == 50


def test_a_policy_signed_by_another_key_is_refused():
    doc = {"version": 2, "issued_at": "x", "body": {}}
    with pytest.raises(PolicyError, match="signature"):
        parse_policy(doc, sign_document(Ed25519PrivateKey.generate(), doc), PUBLIC)


def test_a_tampered_policy_is_refused():
    doc, signature = document(body={"approved_programs": ["waybill.exe"]})
    doc["body"]["approved_programs"].append("python.exe")
    with pytest.raises(PolicyError, match="signature"):
        parse_policy(doc, signature, PUBLIC)


@pytest.mark.parametrize("body,where", [
    ({"protected_hosts": "waybill.example"}, "body.protected_hosts"),
    ({"thresholds": {"export_high_rows": -1}}, "body.thresholds.export_high_rows"),
    ({"thresholds": {"export_high_rows": True}}, "body.thresholds.export_high_rows"),
    ({"colour": "red"}, "body.colour"),
])
def test_malformed_bodies_name_the_field(body, where):
    with pytest.raises(PolicyError, match=where.replace(".", r"\.")):
        parse_policy_body(body)


def test_the_store_keeps_the_last_good_policy(tmp_path):
    current = CurrentPolicy(PolicyStore(tmp_path / "policy.json", PUBLIC))
    current.offer(*document(version=3))
    with pytest.raises(PolicyError):
        current.offer({"version": 4, "issued_at": "x", "body": {}}, "bm9wZQ")
    with pytest.raises(PolicyError, match="older"):
        current.offer(*document(version=2))
    assert current.version == 3
    reopened = CurrentPolicy(None)
    reopened.attach(PolicyStore(tmp_path / "policy.json", PUBLIC))
    assert reopened.version == 3


def test_a_stored_policy_edited_on_disk_is_not_trusted(tmp_path):
    path = tmp_path / "policy.json"
    PolicyStore(path, PUBLIC).offer(*document(version=1, body={"approved_programs": ["a.exe"]}), None)
    saved = json.loads(path.read_text())
    saved["policy"]["body"]["approved_programs"] = ["python.exe"]
    path.write_text(json.dumps(saved))
    with pytest.raises(PolicyError, match="signature"):
        PolicyStore(path, PUBLIC).load()
