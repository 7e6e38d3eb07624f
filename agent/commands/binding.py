"""`signin`, `signout`, `acknowledge` and `proof`: ask the running agent over the local channel.

The device key stays in the service; these commands only carry the staff password in and the
binding headers out. The password comes from stdin (one line), or is asked at a terminal.
"""

from __future__ import annotations

import getpass
import sys
from typing import Any, TextIO

from agent.commands.common import CommandError, emit
from agent.config import AgentConfig
from agent.localchannel import ops
from agent.localchannel.client import AgentClient, AgentError, AgentUnavailable
from agent.service import local_channel_address

# Sign-in waits for HQ (a challenge, then the password check); give it more than a status call.
CALL_TIMEOUT_S = 15.0


def _call(config: AgentConfig, op: str, **args: Any) -> dict[str, Any]:
    client = AgentClient(local_channel_address(config), timeout_s=CALL_TIMEOUT_S)
    try:
        return client.call(op, **args)
    except AgentUnavailable as exc:
        raise CommandError(f"{op}: the agent service is not reachable ({exc}); is it running?") from None
    except AgentError as exc:
        raise CommandError(f"{op}: {exc.code}: {exc.detail}" if exc.detail else f"{op}: {exc.code}") from None


def _read_line(stream: TextIO, prompt: str, *, secret: bool) -> str:
    if stream.isatty():
        return getpass.getpass(prompt) if secret else input(prompt)
    line = stream.readline()
    if not line:
        raise CommandError(f"expected {prompt.rstrip(': ')} on stdin (one line)")
    return line.rstrip("\r\n")


def run_signin(config: AgentConfig, *, staff: str, stdin: TextIO = sys.stdin) -> int:
    password = _read_line(stdin, "password: ", secret=True)
    if not password:
        raise CommandError("signin: the password is empty")
    result = _call(config, ops.OP_SIGNIN, staff=staff, password=password)
    print(f"signed in as {result.get('staff')} on this PC")
    status = _call(config, ops.OP_STATUS)
    if ops.ATTN_POLICY_ACK_REQUIRED in status.get("attention", []):
        print("the data-handling policy must be acknowledged before the business system accepts this session: "
              "use the tray, or `terminal-guard acknowledge --staff ID`")
    return 0


def run_signout(config: AgentConfig) -> int:
    result = _call(config, ops.OP_SIGNOUT)
    staff = result.get("staff")
    print(f"signed out {staff}" if staff else "nobody was signed in")
    return 0


def run_acknowledge(config: AgentConfig, *, staff: str, stdin: TextIO = sys.stdin) -> int:
    """Show the policy, then read the staff id typed as confirmation."""
    text = _call(config, ops.OP_POLICY_TEXT)
    print(text.get("text_zh") or text.get("text_en") or "")
    print(text.get("text_en") or "")
    typed = _read_line(stdin, "type your staff id to confirm: ", secret=False)
    result = _call(config, ops.OP_ACKNOWLEDGE_POLICY, staff=staff, policy_hash=text.get("hash"), typed_staff=typed)
    print("acknowledged; " + ("HQ will be told when it is reachable" if result.get("queued") else "HQ was told"))
    return 0


def run_proof(config: AgentConfig, *, method: str, url: str, as_json: bool, stdin: TextIO = sys.stdin) -> int:
    if url == "-":
        url = _read_line(stdin, "url: ", secret=False).strip()
    result = _call(config, ops.OP_PROOF, method=method, url=url)
    headers = result.get("headers") or {}
    text = "\n".join(f"{name}: {value}" for name, value in headers.items())
    emit(result, as_json=as_json, text=text)
    return 0
