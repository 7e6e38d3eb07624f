"""Fuzz targets: every parser that reads input someone else controls, one function each.

A target takes raw bytes, feeds them to the parser in the shapes it really receives, and checks
the parser's promise: it either accepts the input or refuses it with its own documented error,
never another exception, and what it accepts obeys its invariants. A broken promise raises
AssertionError (or lets the unexpected exception through), which is what hypothesis
(tests/abuse/test_parser_properties.py) and atheris (tests/fuzz/run_atheris.py) report.

The targets import the product lazily, so the atheris runner can instrument the product's
modules before they load.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

Target = Callable[[bytes], None]

_POLICY_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
_DEVICE_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
_MOBILE = re.compile(rb"1[3-9]\d{9}")
_scratch: list[Path] = []


def scratch() -> Path:
    """Where export_file writes its files, made on first use. libFuzzer ends its process without
    running atexit, so run_atheris.py hands a folder (TG_FUZZ_SCRATCH) that it removes itself."""
    if not _scratch:
        given = os.environ.get("TG_FUZZ_SCRATCH")
        folder = Path(given) if given else Path(tempfile.mkdtemp(prefix="tg-fuzz-"))
        folder.mkdir(parents=True, exist_ok=True)
        if not given:
            atexit.register(shutil.rmtree, folder, True)
        _scratch.append(folder)
    return _scratch[0]
_EXTENSIONS = (".csv", ".txt", ".tsv", ".json", ".xlsx", ".xls", ".zip", ".dat")


def _json(data: bytes) -> Any:
    """The input as JSON when it is JSON; otherwise the text itself (parsers meet strings too)."""
    text = data.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def _split(data: bytes, parts: int) -> list[str]:
    pieces = data.split(b"\x00", parts - 1)
    pieces += [b""] * (parts - len(pieces))
    return [piece.decode("utf-8", "replace") for piece in pieces]


# -- rules --------------------------------------------------------------------------------------


def rule_text(data: bytes) -> None:
    """A rule file's text -> good rules and located errors; the good ones then match safely."""
    from agent.rules import RuleError, RuleSet
    from agent.sensors.observations import ProcessInfo, ProcessStarted

    text = data.decode("utf-8", "replace")
    ruleset, errors = RuleSet.from_texts([("fuzz.yml", text)])
    for error in errors:
        assert isinstance(error, RuleError) and error.file == "fuzz.yml", error
        assert error.field and error.message, f"an error without a field or message: {error}"
    if len(ruleset):
        name, exe, arg = _split(data[-200:], 3)
        proc = ProcessInfo(pid=4242, name=name[:64] or "x", exe=exe[:260] or None, cmdline=(exe[:260], arg[:500]))
        for finding in ruleset.match_process(ProcessStarted(proc, None, 0.0)):
            assert finding.rule in {info.rule for info in ruleset.rules}
        # The compiled form round-trips (the service loads rules only in this form).
        from agent.rules import RuleSet as Loaded

        assert len(Loaded.from_compiled(json.loads(json.dumps(ruleset.to_compiled())))) == len(ruleset)


def compiled_rules(data: bytes) -> None:
    """The compiled-rules cache document -> a rule set, or CompiledFormatError naming the place."""
    from agent.rules import RuleSet
    from agent.rules.codec import CompiledFormatError

    try:
        RuleSet.from_compiled(_json(data))
    except CompiledFormatError as exc:
        assert str(exc), "a format error without a message"


# -- PII scanner --------------------------------------------------------------------------------


def export_file(data: bytes) -> None:
    """Any file in a watched folder -> a finding or nothing; never an exception, never the content."""
    from agent.exports.scan import scan_file

    extension = _EXTENSIONS[data[0] % len(_EXTENSIONS)] if data else ".csv"
    path = scratch() / f"export{extension}"
    path.write_bytes(data[1:])
    finding = scan_file(path)
    if finding is None:
        return
    shown = json.dumps(finding.to_dict(), ensure_ascii=False).encode("utf-8")
    leaked = [m for m in set(_MOBILE.findall(data)) if m in shown]
    assert not leaked, f"the finding carries {len(leaked)} phone-number-shaped value(s) from the file"


# -- policy -------------------------------------------------------------------------------------


def policy_body(data: bytes) -> None:
    from agent.policy import PolicyBody, PolicyError, parse_policy_body

    try:
        body = parse_policy_body(_json(data))
    except PolicyError as exc:
        assert str(exc)
        return
    assert isinstance(body, PolicyBody)


def policy_document(data: bytes) -> None:
    """A policy document from HQ: badly signed is always refused; well signed parses or is refused."""
    from agent.policy import PolicyError, parse_policy
    from agent.signing import public_key_text, sign_document

    document = _json(data[1:])
    public = public_key_text(_POLICY_KEY)
    signed_well = bool(data) and data[0] % 2 == 0
    try:
        signature = sign_document(_POLICY_KEY, document) if signed_well else data[:86].decode("latin-1")
    except (TypeError, ValueError):
        return  # not JSON-serialisable: HQ could not have signed it
    try:
        policy = parse_policy(document, signature, public)
    except PolicyError:
        return
    assert signed_well, "a policy with a made-up signature was accepted"
    assert policy.version == document["version"]


# -- the wire: agent <-> HQ ----------------------------------------------------------------------


def signed_headers(data: bytes) -> None:
    """The five X-TG-* headers of a request -> parsed, or SignatureError; a forged one never verifies."""
    from agent.signing import SIGNED_HEADERS, SignatureError, parse_signed_headers, verify_request

    headers = dict(zip(SIGNED_HEADERS, _split(data, len(SIGNED_HEADERS)), strict=True))
    try:
        signed = parse_signed_headers(headers)
    except SignatureError:
        return
    try:
        verify_request(_DEVICE_KEY.public_key(), signed, method="POST", path="/v1/events", body=data)
    except SignatureError:
        return
    raise AssertionError("a signature made up by the fuzzer verified")


def hq_request_bodies(data: bytes) -> None:
    """What a device sends HQ: each body parser accepts it or answers a 4xx ApiError."""
    from hq.api.deps import parse_body
    from hq.api.errors import ApiError
    from hq.api.models import MAX_EVENTS_PER_BATCH, EnrollIn, HeartbeatIn
    from hq.api.routes.events import parse_batch

    try:
        batch = parse_batch(data)
        assert len(batch.events) <= MAX_EVENTS_PER_BATCH
        for event in batch.events:
            assert 0 <= event.priority <= 3 and re.fullmatch(r"[A-Za-z0-9._:-]{1,64}", event.id)
            json.dumps(event.body, allow_nan=False)
    except ApiError as exc:
        assert 400 <= exc.status < 500, exc
    for model in (HeartbeatIn, EnrollIn):
        try:
            parsed = parse_body(model, data)
        except ApiError as exc:
            assert exc.status == 422, exc
            continue
        if isinstance(parsed, HeartbeatIn):
            json.dumps(parsed.columns(), allow_nan=False)


def hq_answers(data: bytes) -> None:
    """What HQ (or whatever answers in its place) sends the agent: an outcome, never a crash."""
    from agent.hqclient import RETRY_AFTER_CAP_S, HqError, _Answer, _raise_for_answer, parse_retry_after

    status = 100 + (data[0] * 4 % 500) if data else 200
    header, _, content = data[1:].partition(b"\x00")
    # urllib3 hands header values over decoded as latin-1, whatever bytes came.
    retry_after = header[:64].decode("latin-1")
    answer = _Answer(status, {"Retry-After": retry_after}, content)
    try:
        result = _raise_for_answer(answer, now=1_800_000_000.0)
        assert isinstance(result, dict) and status == 200
    except HqError:
        pass
    wait = parse_retry_after(retry_after, now=1_800_000_000.0)
    assert 0.0 <= wait <= RETRY_AFTER_CAP_S


def local_channel(data: bytes) -> None:
    """Lines from the tray (or any local process) to the agent, and the agent's answers back."""
    from agent.localchannel.protocol import ChannelError, LineBuffer, parse_request, parse_response

    buffer = LineBuffer(4096)
    buffer.feed(data)
    while True:
        try:
            line = buffer.next_line()
        except ChannelError:
            return
        if line is None:
            return
        try:
            request = parse_request(line)
            assert isinstance(request.id, int) and request.op and not ({"id", "op"} & request.args.keys())
        except ChannelError as exc:
            assert exc.code == "bad_request"
        with contextlib.suppress(ValueError):
            parse_response(line)


TARGETS: dict[str, Target] = {
    "rule_text": rule_text,
    "compiled_rules": compiled_rules,
    "export_file": export_file,
    "policy_body": policy_body,
    "policy_document": policy_document,
    "signed_headers": signed_headers,
    "hq_request_bodies": hq_request_bodies,
    "hq_answers": hq_answers,
    "local_channel": local_channel,
}
