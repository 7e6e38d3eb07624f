"""Policy's `responses`: per-rule actions, patterns, defaults, validation, and `terminate` on real processes."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from agent.detection.actions import ResponsePolicy, parse_responses
from agent.detection.terminate import terminate_tree
from agent.policy import PolicyError, parse_policy_body


def test_a_rule_id_beats_a_pattern_and_a_longer_pattern_beats_a_shorter_one() -> None:
    policy = parse_responses({"rules": {"tg.*": "notify", "tg.remote.*": ["require_ack", "suspend_binding"],
                                        "tg.remote.todesk": "alert"}})
    assert policy.actions_for("tg.remote.todesk", "high") == ("alert",)
    assert policy.actions_for("tg.remote.anydesk", "low") == ("alert", "require_ack", "suspend_binding")
    assert policy.actions_for("tg.automation.headless", "critical") == ("alert", "notify")


def test_a_category_beats_a_pattern_and_a_rule_id_beats_a_category() -> None:
    policy = parse_responses({"rules": {"*": "alert", "category:export": "require_ack",
                                        "8f0c-export-rule": "notify"}})
    assert policy.actions_for("any-uuid", "high", "export") == ("alert", "require_ack")
    assert policy.actions_for("8f0c-export-rule", "high", "export") == ("alert", "notify")
    assert policy.actions_for("any-uuid", "high", "automation") == ("alert",)


def test_rules_policy_does_not_name_keep_the_severity_default() -> None:
    policy = ResponsePolicy()
    assert policy.actions_for("x", "critical") == ("alert", "require_ack")
    assert policy.actions_for("x", "high") == ("alert", "require_ack")
    assert policy.actions_for("x", "medium") == ("alert", "notify")
    assert policy.actions_for("x", "low") == ("alert",)
    assert parse_responses({"rules": {"*": "alert"}}).actions_for("x", "critical") == ("alert",)


def test_terminate_needs_allow_terminate_and_require_ack_absorbs_notify() -> None:
    rules = {"tg.a": ["terminate", "notify", "require_ack"]}
    assert parse_responses({"rules": rules}).actions_for("tg.a", "high") == ("alert", "require_ack")
    allowed = parse_responses({"allow_terminate": True, "rules": rules})
    assert allowed.actions_for("tg.a", "high") == ("alert", "terminate", "require_ack")


@pytest.mark.parametrize(("body", "message"), [
    ({"responses": []}, "body.responses: expected an object"),
    ({"responses": {"allow_terminate": "yes"}}, "body.responses.allow_terminate: expected true or false"),
    ({"responses": {"rules": {"tg.a": "kill"}}}, "body.responses.rules.tg.a[0]: expected one of"),
    ({"responses": {"rules": {"tg.a": []}}}, "body.responses.rules.tg.a: expected an action or a non-empty list"),
    ({"responses": {"rules": {"": "alert"}}}, "body.responses.rules: a rule id or pattern of 1 to"),
    ({"responses": {"rules": "alert"}}, "body.responses.rules: expected an object"),
    ({"responses": {"when": 1}}, "body.responses.when: unknown key"),
])
def test_a_malformed_responses_section_names_the_field(body: dict, message: str) -> None:
    with pytest.raises(PolicyError, match=message.replace("[", r"\[").replace(".", r"\.")):
        parse_policy_body(body)


def _tree() -> tuple[psutil.Process, psutil.Process]:
    code = ("import subprocess, sys, time; "
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)")
    parent = psutil.Process(subprocess.Popen([sys.executable, "-c", code]).pid)
    deadline = time.monotonic() + 10
    while not parent.children() and time.monotonic() < deadline:
        time.sleep(0.02)
    [child] = parent.children()
    return parent, child


def test_terminate_ends_the_program_and_what_it_started() -> None:
    parent, child = _tree()
    done = terminate_tree(parent.pid, parent.create_time())
    assert done.outcome == "terminated" and set(done.pids) == {parent.pid, child.pid}
    psutil.wait_procs([parent, child], timeout=5)
    assert not child.is_running() and not parent.is_running()


def test_terminate_refuses_a_pid_that_now_belongs_to_another_program() -> None:
    parent, child = _tree()
    try:
        assert terminate_tree(parent.pid, parent.create_time() - 5).outcome == "pid_reused"
        assert parent.is_running() and child.is_running()
    finally:
        for proc in (child, parent):
            proc.kill()
        psutil.wait_procs([parent, child], timeout=5)


def test_terminate_of_a_program_already_gone() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert terminate_tree(proc.pid, None).outcome == "gone"
