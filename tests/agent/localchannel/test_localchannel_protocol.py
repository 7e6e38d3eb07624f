"""Wire format, line framing, the ops contract, addresses and the in-process fake transport."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from agent.localchannel import ops
from agent.localchannel.address import LINUX_SYSTEM_STATE_DIR, default_address, default_client_address
from agent.localchannel.client import AgentClient, AgentError, AgentUnavailable
from agent.localchannel.default_policy import DEFAULT_POLICY_EN, DEFAULT_POLICY_ZH, default_policy_text
from agent.localchannel.fake import connecting_as
from agent.localchannel.protocol import (
    ChannelError,
    LineBuffer,
    encode_request,
    error_response,
    ok_response,
    parse_request,
    parse_response,
    request_id_of,
)
from agent.localchannel.server import LocalChannelServer
from agent.localchannel.transport import Peer
from agent.localchannel.unix import console_uids


def test_request_round_trips_through_encode_and_parse() -> None:
    line = encode_request(5, "signin", {"staff": "S001", "password": "密码"})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    request = parse_request(line.rstrip(b"\n"))
    assert (request.id, request.op, request.args) == (5, "signin", {"staff": "S001", "password": "密码"})


def test_reserved_argument_names_are_refused_by_the_encoder() -> None:
    with pytest.raises(ValueError, match="reserved"):
        encode_request(1, "status", {"op": "other"})


def test_newlines_inside_values_never_split_a_message() -> None:
    line = ok_response(3, {"text": "line one\nline two"})
    assert line.count(b"\n") == 1
    assert parse_response(line)["result"]["text"] == "line one\nline two"


def test_error_response_shape() -> None:
    assert json.loads(error_response(4, "not_available", "later")) == {
        "id": 4, "ok": False, "error": "not_available", "detail": "later"
    }


@pytest.mark.parametrize("line", [b"{}", b'{"ok": "yes"}', b'{"ok": true, "result": []}', b'{"ok": false}', b"nope"])
def test_malformed_responses_are_refused(line: bytes) -> None:
    with pytest.raises(ValueError):
        parse_response(line)


def test_request_id_is_recovered_from_a_rejected_line_when_possible() -> None:
    assert request_id_of(b'{"id": 8, "op": 3}') == 8
    assert request_id_of(b'{"id": "8"}') is None
    assert request_id_of(b"garbage") is None


def test_line_buffer_splits_lines_across_chunks() -> None:
    buffer = LineBuffer(limit=100)
    buffer.feed(b'{"a": 1}\n{"b"')
    assert buffer.next_line() == b'{"a": 1}'
    assert buffer.next_line() is None
    buffer.feed(b": 2}\r\n")
    assert buffer.next_line() == b'{"b": 2}'
    assert buffer.pending == 0


def test_line_buffer_refuses_a_line_over_the_limit() -> None:
    buffer = LineBuffer(limit=10)
    buffer.feed(b"x" * 11 + b"\n")
    with pytest.raises(ChannelError) as caught:
        buffer.next_line()
    assert caught.value.code == "too_large"
    buffer = LineBuffer(limit=10)
    buffer.feed(b"y" * 11)
    with pytest.raises(ChannelError):
        buffer.next_line()


def test_policy_hash_depends_on_both_texts_and_their_boundary() -> None:
    base = ops.policy_text_hash("ab", "c")
    assert base != ops.policy_text_hash("a", "bc")
    assert base != ops.policy_text_hash("ab", "d")
    assert base == ops.policy_text_hash("ab", "c")


@pytest.mark.parametrize(
    ("severity", "action", "text", "ok"),
    [
        ("low", "acknowledge", "", True),
        ("medium", "acknowledge", "", True),
        ("high", "acknowledge", "", False),
        ("critical", "acknowledge", "short", False),
        ("critical", "acknowledge", "I was told to by the manager on duty", True),
        ("low", "explain", "", False),
        ("low", "explain", "  padded   ", False),
        ("low", "explain", "我在处理客户的退件申请", True),
        ("high", "explain", "x" * (ops.MAX_JUSTIFICATION_CHARS + 1), False),
    ],
)
def test_justification_rule(severity: str, action: str, text: str, ok: bool) -> None:
    assert (ops.justification_problem(severity, action, text) is None) is ok


def test_staff_id_format() -> None:
    assert ops.valid_staff_id("S001")
    assert ops.valid_staff_id("outlet-12.staff_3")
    for bad in ("", " S001", "S 001", "-S001", "x" * 65, "工号"):
        assert not ops.valid_staff_id(bad), bad


def test_require_helpers_name_the_argument() -> None:
    with pytest.raises(ChannelError, match="'staff'") as caught:
        ops.require_str({"staff": 3}, "staff")
    assert caught.value.code == ops.ERR_INVALID_ARGUMENT
    with pytest.raises(ChannelError, match="acknowledge, explain"):
        ops.require_choice({"action": "ignore"}, "action", ops.ANSWER_ACTIONS)
    assert ops.require_choice({"action": "explain"}, "action", ops.ANSWER_ACTIONS) == "explain"


def test_every_attention_code_is_documented_and_ops_are_unique() -> None:
    codes = {value for name, value in vars(ops).items() if name.startswith("ATTN_")}
    assert codes == set(ops.ATTENTION_CODES)
    assert len(set(ops.ALL_OPS)) == len(ops.ALL_OPS) == 8


def test_default_policy_covers_the_four_rules_in_both_languages() -> None:
    for phrase in ("出借", "安装", "导出", "拍摄", "报告"):
        assert phrase in DEFAULT_POLICY_ZH, phrase
    for phrase in ("lend", "install", "export", "photograph", "report"):
        assert phrase in DEFAULT_POLICY_EN.lower(), phrase
    result = default_policy_text()
    assert result["hash"] == ops.policy_text_hash(result["text_zh"], result["text_en"])
    assert result["version"] is None


def test_default_policy_has_no_phone_number_shaped_literals() -> None:
    import re

    assert not re.search(r"1[3-9]\d{9}", DEFAULT_POLICY_ZH + DEFAULT_POLICY_EN)


def test_linux_address_is_the_socket_in_the_state_dir(tmp_path: Path) -> None:
    assert default_address(tmp_path) == str(tmp_path / "agent.sock")


def test_client_address_follows_the_env_override_then_the_system_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TG_AGENT_ADDRESS", "fake:somewhere")
    assert default_client_address() == "fake:somewhere"
    monkeypatch.delenv("TG_AGENT_ADDRESS")
    assert default_client_address() == str(LINUX_SYSTEM_STATE_DIR / "agent.sock")
    (tmp_path / "agent.sock").touch()
    if not (LINUX_SYSTEM_STATE_DIR / "agent.sock").exists():
        assert default_client_address(tmp_path) == str(tmp_path / "agent.sock")


def test_system_state_dir_matches_the_platform_module() -> None:
    from agent.platform.linux import SYSTEM_STATE_DIR

    assert LINUX_SYSTEM_STATE_DIR == SYSTEM_STATE_DIR


def test_console_uids_reads_active_local_seat_sessions(tmp_path: Path) -> None:
    (tmp_path / "1").write_text("UID=1000\nACTIVE=1\nREMOTE=0\nSEAT=seat0\n")
    (tmp_path / "2").write_text("UID=1001\nACTIVE=0\nREMOTE=0\nSEAT=seat0\n")  # switched away
    (tmp_path / "3").write_text("UID=1002\nACTIVE=1\nREMOTE=1\n")  # ssh
    (tmp_path / "4").write_text("UID=1003\nACTIVE=1\nREMOTE=0\n")  # no seat: a cron/ssh-less session
    (tmp_path / "5").write_text("garbage")
    assert console_uids(tmp_path) == {1000}
    assert console_uids(tmp_path / "missing") == set()


def test_fake_transport_checks_the_declared_peer() -> None:
    server = LocalChannelServer("fake:test-agent", {"echo": lambda args: dict(args)}, allowed_uids={1000})
    server.start()
    try:
        assert AgentClient("fake:test-agent").call("echo", a=1) == {"a": 1}  # root
        with connecting_as(Peer(pid=10, uid=1000)):
            assert AgentClient("fake:test-agent").call("echo", a=2) == {"a": 2}
        with connecting_as(Peer(pid=11, uid=1001)), pytest.raises(AgentError) as caught:
            AgentClient("fake:test-agent").call("echo")
        assert caught.value.code == "forbidden"
    finally:
        server.stop()
    with pytest.raises(AgentUnavailable):
        AgentClient("fake:test-agent").call("echo")


def test_client_raises_protocol_error_on_a_mismatched_id() -> None:
    class Liar:
        def __init__(self) -> None:
            self.sent = b""

        def connect(self, address: str, timeout: float) -> Any:
            return self

        def listen(self, address: str, allowed_uids: set[int] | None) -> Any:
            raise NotImplementedError

        def send_all(self, data: bytes, timeout: float) -> None:
            self.sent = data

        def recv(self, max_bytes: int, timeout: float) -> bytes:
            return b'{"id": 999999, "ok": true, "result": {}}\n'

        def peer(self) -> Peer:
            return Peer(uid=os.geteuid())

        def close(self) -> None:
            pass

    with pytest.raises(AgentError) as caught:
        AgentClient("fake:liar", transport=Liar()).call("status")
    assert caught.value.code == "protocol"
