"""Property tests over every parser that reads input someone else controls (targets in
tests/fuzz/targets.py): random bytes, and inputs shaped like the real thing (built-in rules with
edits, JSON policy bodies, signed headers, HQ request bodies, HQ answers, local-channel lines).

`make test` runs a bounded number of examples per property; `make soak` (TG_SOAK=1) runs many
more here, and atheris runs the same targets past 100,000 inputs each (tests/fuzz/run_atheris.py).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.hqclient import HqThrottled, _Answer, _raise_for_answer, parse_retry_after
from agent.rules import builtin_texts
from tests.abuse.conftest import SOAK
from tests.fuzz import targets

FEW = settings(max_examples=2000 if SOAK else 150, deadline=None, derandomize=not SOAK,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW = settings(FEW, max_examples=500 if SOAK else 40)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=20), inner, max_size=5),
    max_leaves=25,
)


def as_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


# -- rule files --------------------------------------------------------------------------------

RULES = [text for _, text in builtin_texts()]


@st.composite
def edited_rules(draw: st.DrawFn) -> bytes:
    """A built-in rule with a few lines deleted, duplicated, or replaced by something else."""
    lines = draw(st.sampled_from(RULES)).splitlines()
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, max(0, len(lines) - 1)))
        edit = draw(st.sampled_from(("delete", "duplicate", "replace", "value")))
        if not lines:
            break
        if edit == "delete":
            del lines[where]
        elif edit == "duplicate":
            lines.insert(where, lines[where])
        elif edit == "replace":
            lines[where] = draw(st.text(max_size=60))
        else:
            key = lines[where].split(":", 1)[0]
            lines[where] = f"{key}: {draw(st.text(max_size=40))}"
    return "\n".join(lines).encode("utf-8", "surrogatepass")


@SLOW
@given(edited_rules())
def test_an_edited_rule_file_loads_or_names_the_field_at_fault(data: bytes) -> None:
    targets.rule_text(data)


@SLOW
@given(st.binary(max_size=2000))
def test_random_bytes_as_a_rule_file_are_refused_with_located_errors(data: bytes) -> None:
    targets.rule_text(data)


@FEW
@given(json_values.map(as_bytes) | st.binary(max_size=500))
def test_a_damaged_compiled_rules_cache_is_refused_with_its_format_error(data: bytes) -> None:
    targets.compiled_rules(data)


@FEW
@given(st.sampled_from(RULES), st.integers(0, 10_000), st.binary(max_size=8))
def test_a_compiled_rules_cache_with_a_byte_flipped_is_refused_or_still_valid(text: str, at: int,
                                                                               junk: bytes) -> None:
    from agent.rules import RuleSet

    ruleset, _ = RuleSet.from_texts([("rule.yml", text)])
    document = json.dumps(ruleset.to_compiled()).encode()
    at %= len(document)
    targets.compiled_rules(document[:at] + junk + document[at + len(junk):])


# -- PII scanner --------------------------------------------------------------------------------

csv_cells = st.one_of(
    st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True),
    st.from_regex(r"[1-6][0-9]{16}[0-9X]", fullmatch=True),
    st.from_regex(r"SF[0-9]{12}", fullmatch=True),
    st.text(max_size=12),
)


@st.composite
def csvish(draw: st.DrawFn) -> bytes:
    """Text shaped like an export: rows of phone-, ID- and waybill-like cells with odd separators."""
    separator = draw(st.sampled_from([",", "\t", ";", "|", ", "]))
    rows = draw(st.lists(st.lists(csv_cells, min_size=1, max_size=8), max_size=80))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "utf-16"]))
    text = "\n".join(separator.join(row) for row in rows)
    return bytes([0]) + text.encode(encoding, "replace")  # first byte 0 -> a .csv file


@SLOW
@given(csvish())
def test_a_csv_like_export_gives_a_finding_or_nothing_and_never_its_content(data: bytes) -> None:
    targets.export_file(data)


@SLOW
@given(st.binary(max_size=4000))
def test_random_bytes_under_any_export_extension_never_crash_the_scanner(data: bytes) -> None:
    targets.export_file(data)


# -- policy -------------------------------------------------------------------------------------

policy_bodies = st.fixed_dictionaries({}, optional={
    "protected_hosts": st.lists(st.text(max_size=30), max_size=4) | json_values,
    "approved_programs": st.lists(st.text(max_size=30), max_size=4) | json_values,
    "rules": st.lists(st.sampled_from(RULES) | st.text(max_size=50), max_size=2) | json_values,
    "thresholds": st.dictionaries(st.sampled_from(["export_high_mobiles", "export_high_rows", "export_critical",
                                                   "other"]), st.integers(-5, 10**6) | json_values, max_size=3),
    "binding": st.dictionaries(st.text(max_size=20), json_values, max_size=3) | json_values,
    "sharing": st.dictionaries(st.text(max_size=20), json_values, max_size=3) | json_values,
    "unknown": json_values,
})


@FEW
@given(policy_bodies.map(as_bytes) | json_values.map(as_bytes) | st.binary(max_size=300))
def test_a_policy_body_parses_or_says_which_field_is_wrong(data: bytes) -> None:
    targets.policy_body(data)


@FEW
@given(st.sampled_from([b"\x00", b"\x01"]),
       st.fixed_dictionaries({"version": st.integers(-2, 5) | json_values, "issued_at": st.text(max_size=25),
                              "body": policy_bodies}, optional={"extra": json_values}).map(as_bytes))
def test_a_policy_document_is_accepted_only_when_signed_and_well_formed(mode: bytes, document: bytes) -> None:
    targets.policy_document(mode + document)


# -- the wire -----------------------------------------------------------------------------------


@FEW
@given(st.lists(st.text(max_size=80) | st.from_regex(r"-?[0-9]{1,20}", fullmatch=True), min_size=5, max_size=5))
def test_signed_headers_parse_or_name_the_bad_header_and_a_forgery_never_verifies(values: list[str]) -> None:
    targets.signed_headers("\x00".join(values).encode("utf-8", "surrogatepass"))


event_shapes = st.fixed_dictionaries({
    "id": st.text(max_size=70) | st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True),
    "kind": st.text(max_size=70),
    "priority": st.integers(-2, 5) | json_values,
    "created": st.floats() | json_values,
    "body": json_values,
})


@FEW
@given(st.one_of(
    st.fixed_dictionaries({"events": st.lists(event_shapes, max_size=6)}).map(as_bytes),
    st.dictionaries(st.sampled_from(["agent_version", "policy_version", "os_users", "remote_sessions", "staff",
                                     "spool_depth", "lost_events", "clock_offset_s", "cpu_percent", "token",
                                     "public_key", "proof", "hostname", "os"]), json_values).map(as_bytes),
    st.binary(max_size=400),
))
def test_hq_request_bodies_are_accepted_or_refused_with_a_4xx(data: bytes) -> None:
    targets.hq_request_bodies(data)


@FEW
@given(st.integers(0, 255), st.binary(max_size=30) | st.text(max_size=12).map(lambda t: t.encode("latin-1", "replace")),
       json_values.map(as_bytes) | st.binary(max_size=200))
def test_any_answer_from_hq_is_sorted_into_an_outcome_never_a_crash(status: int, header: bytes, body: bytes) -> None:
    targets.hq_answers(bytes([status]) + header.replace(b"\x00", b"") + b"\x00" + body)


def test_a_retry_after_of_non_ascii_digits_means_the_default_wait_not_a_crash() -> None:
    # "²".isdigit() is True but float("²") fails: a proxy's latin-1 header once crashed the uplink.
    assert parse_retry_after("\xb2", now=0.0) == 60.0
    try:
        _raise_for_answer(_Answer(429, {"Retry-After": "\xb9\xb2"}, b"{}"), now=0.0)
    except HqThrottled as exc:
        assert exc.retry_after_s == 60.0
    else:
        raise AssertionError("a 429 was not read as throttling")


@FEW
@given(st.lists(json_values.map(as_bytes) | st.binary(max_size=100), max_size=6))
def test_local_channel_lines_are_parsed_or_refused_as_bad_requests(lines: list[bytes]) -> None:
    targets.local_channel(b"\n".join(lines))
