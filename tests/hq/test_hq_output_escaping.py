"""What a device reports reaches the operator's terminal as visible escapes: the CLI's text lines
and its --json lines carry no character a terminal would act on or reorder."""

from __future__ import annotations

import json
import re

from hq.commands import audit_line, device_table, event_line, json_line, shown

# C0 (tab and newline too: inside a field they would forge a line), DEL, C1, bidi controls, surrogates.
ACTED_ON = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
HOSTILE = "a\x1b[2J\x9b31m\x7f\tb\nc\u202eslx.exe\u2066\udcff"


def test_controls_become_visible_escapes_and_other_text_stays() -> None:
    assert shown(HOSTILE) == "a\\x1b[2J\\x9b31m\\x7f\\x09b\\x0ac\\u202eslx.exe\\u2066\\udcff"
    assert shown("收银台 pc-01 ../..\\x") == "收银台 pc-01 ../..\\x"


def test_event_audit_and_device_lines_carry_no_raw_control() -> None:
    event = {"received_at": "2026-01-01T00:00:00Z", "device_id": "d\x1b1", "origin": "agent", "priority": 2,
             "kind": HOSTILE, "body": {HOSTILE: HOSTILE}}
    audit = {"at": "2026-01-01T00:00:00Z", "last_at": None, "action": "signed_request", "outcome": "denied",
             "reason": "unknown_device", "device_id": HOSTILE, "remote_addr": None, "path": "/v1/x\x9b",
             "detail": HOSTILE, "count": 1}
    device = {"device_id": "d1", "outlet_id": "o\x1b", "status": "online", "last_heartbeat": None,
              "heartbeat_count": 1, "agent_version": "0.1\x7f", "policy_version": 1, "hostname": HOSTILE,
              "lost_events": {"spool_full\x1b[2J": 1}}
    lines = [event_line(event), audit_line(audit), *device_table([device])]
    assert [ACTED_ON.findall(line) for line in lines] == [[]] * len(lines)


def test_json_lines_mean_the_same_and_carry_no_raw_control() -> None:
    record = {"kind": HOSTILE, "body": {HOSTILE: [HOSTILE, 1]}, "name": "收银台"}
    line = json_line(record)
    assert not ACTED_ON.findall(line)
    assert json.loads(line) == record and "收银台" in line
