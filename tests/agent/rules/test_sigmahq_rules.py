"""Unmodified SigmaHQ rules (fixtures/sigmahq, sources cited in each file) load and behave per spec,
or are rejected with a clear reason (fixtures/sigmahq_rejected)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from agent.rules import RuleSet, lint
from agent.sensors.observations import NetworkConnection, ProcessStarted
from tests.agent.rules.builders import conn, proc

FIXTURES = Path(__file__).parent / "fixtures"
PS = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
WUAUCLT = r"C:\WINDOWS\uus\AMD64\wuauclt.exe"


@pytest.fixture(scope="module")
def sigmahq() -> RuleSet:
    rules, errors = RuleSet.from_paths([FIXTURES / "sigmahq"])
    assert errors == []
    return rules


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


CASES: list[tuple[str, ProcessStarted | NetworkConnection, bool]] = [
    # proc_creation_win_remote_access_tools_anydesk: a list of maps is an OR
    ("b52e84a3-029e-4529-b09b-71d19dd27e94", proc(r"C:\Program Files (x86)\AnyDesk\AnyDesk.exe", "AnyDesk.exe"), True),
    ("b52e84a3-029e-4529-b09b-71d19dd27e94", proc(r"C:\Users\c\Downloads\support.exe", "support.exe",
                                                  product="AnyDesk"), True),
    ("b52e84a3-029e-4529-b09b-71d19dd27e94", proc(r"C:\Windows\notepad.exe", "notepad.exe"), False),
    # proc_creation_win_powershell_base64_encoded_cmd: parentheses, all of, not 1 of filter_optional_*
    ("ca2092a1-c273-4878-9b4b-0d60115bf5ea", proc(PS, "powershell.exe -nop -w hidden -enc JABzAD0ATgBlAHcA"), True),
    ("ca2092a1-c273-4878-9b4b-0d60115bf5ea", proc(PS, "powershell.exe -ExecutionPolicy remotesigned -enc JABzAD0A"),
     False),
    ("ca2092a1-c273-4878-9b4b-0d60115bf5ea", proc(PS, "powershell.exe -File C:\\scripts\\backup.ps1"), False),
    ("ca2092a1-c273-4878-9b4b-0d60115bf5ea", proc(r"C:\x\other.exe", "other.exe -enc JABzAD0A"), False),
    # proc_creation_win_powershell_base64_frombase64string: base64offset
    ("fdb62a13-9a81-4e5c-a38f-ea93a16f6d7c",
     proc(r"C:\Windows\System32\cmd.exe", f"cmd /c echo {b64('$b=[Convert]::FromBase64String($s)')}"), True),
    ("fdb62a13-9a81-4e5c-a38f-ea93a16f6d7c",
     proc(r"C:\Windows\System32\cmd.exe", f"cmd /c echo {b64('$b=[Convert]::ToBase64String($s)')}"), False),
    # proc_creation_win_certutil_encode: contains|windash
    ("e62a9f0c-ca1e-46b2-85d5-a6da77f86d1a", proc(r"C:\Windows\System32\certutil.exe",
                                                  r"certutil.exe /encode C:\data\export.csv C:\data\e.b64"), True),
    ("e62a9f0c-ca1e-46b2-85d5-a6da77f86d1a", proc(r"C:\Windows\System32\certutil.exe",
                                                  r"certutil.exe -decode C:\a.b64 C:\a.txt"), False),
    # proc_creation_win_curl_download_direct_ip_exec: re, endswith filter list
    ("9cc85849-3b02-4cb5-b371-3a1ff54f2218", proc(r"C:\Windows\System32\curl.exe",
                                                  "curl.exe -O http://203.0.113.50/orders.txt"), True),
    ("9cc85849-3b02-4cb5-b371-3a1ff54f2218", proc(r"C:\Windows\System32\curl.exe",
                                                  "curl.exe -O http://203.0.113.50/tool.exe"), False),
    ("9cc85849-3b02-4cb5-b371-3a1ff54f2218", proc(r"C:\Windows\System32\curl.exe",
                                                  "curl.exe -O https://example.com/orders.txt"), False),
    # proc_creation_win_remote_access_tools_anydesk_silent_install: contains|all
    ("114e7f1c-f137-48c8-8f54-3088c24ce4b9", proc(r"C:\Users\c\Downloads\AnyDesk.exe",
                                                  'AnyDesk.exe --install "C:\\Program Files (x86)\\AnyDesk" '
                                                  "--start-with-win --silent"), True),
    ("114e7f1c-f137-48c8-8f54-3088c24ce4b9", proc(r"C:\Users\c\Downloads\AnyDesk.exe",
                                                  "AnyDesk.exe --install C:\\AnyDesk --start-with-win"), False),
    # proc_creation_win_browsers_chromium_headless_debugging
    ("3e8207c5-fcd2-4ea6-9418-15d45b4890e4", proc(r"C:\Program Files\Google\Chrome\Application\chrome.exe",
                                                  "chrome.exe --headless --remote-debugging-port=9222 "
                                                  "--user-data-dir=C:\\Users\\c\\AppData\\Local\\Google\\Chrome"),
     True),
    ("3e8207c5-fcd2-4ea6-9418-15d45b4890e4", proc(r"C:\Program Files\Google\Chrome\Application\chrome.exe",
                                                  "chrome.exe --remote-debugging-port=9222 --user-data-dir=C:\\p"),
     False),
    # proc_creation_lnx_base64_decode: a Linux rule with a POSIX path
    ("e2072cab-8c9a-459b-b63c-40ae79e27031", proc("/usr/bin/base64", "base64 -d /tmp/payload.txt"), True),
    ("e2072cab-8c9a-459b-b63c-40ae79e27031", proc("/usr/bin/base64", "base64 /tmp/report.csv"), False),
    ("e2072cab-8c9a-459b-b63c-40ae79e27031", proc(r"C:\Tools\base64.exe", "base64.exe -d x"), False),
    # net_connection_win_wuauclt_network_connection: cidr, null, '' and contains|all filters
    ("c649a6c7-cd8c-4a78-9c04-000fc76df954",
     conn(WUAUCLT, remote_ip="198.51.100.23", cmdline=f'"{WUAUCLT}" /DeploymentHandlerFullPath '
          r"\\?\C:\Users\Public\x.dll /ClassId aaa256e1 /RunHandlerComServer"), True),
    ("c649a6c7-cd8c-4a78-9c04-000fc76df954",
     conn(WUAUCLT, remote_ip="10.20.30.40", cmdline=f'"{WUAUCLT}" /DeploymentHandlerFullPath '
          r"\\?\C:\Users\Public\x.dll /ClassId aaa256e1 /RunHandlerComServer"), False),
    ("c649a6c7-cd8c-4a78-9c04-000fc76df954",
     conn(WUAUCLT, remote_ip="198.51.100.23", cmdline=f'"{WUAUCLT}" /DeploymentHandlerFullPath '
          r"\\?\C:\Windows\UUS\AMD64\UpdateDeploy.dll /ClassId aaa256e1 /RunHandlerComServer"), False),
    # net_connection_win_domain_ngrok_tunnel
    ("1d08ac94-400d-4469-a82f-daee9a908849", conn(r"C:\Users\c\ngrok.exe", hostname="tunnel.us.ngrok.com"), True),
    ("1d08ac94-400d-4469-a82f-daee9a908849", conn(r"C:\Users\c\ngrok.exe", hostname="dashboard.ngrok.com"), False),
    # net_connection_win_remote_access_tools_anydesk_incoming_connection: Initiated 'false'
    ("d58ba5c6-0ed7-4b9d-a433-6878379efda9", conn(r"C:\PF\AnyDesk\AnyDesk.exe", direction="inbound"), True),
    ("d58ba5c6-0ed7-4b9d-a433-6878379efda9", conn(r"C:\PF\AnyDesk\AnyDesk.exe", direction="outbound"), False),
    # net_connection_win_dllhost_non_local_ip: startswith lists as filters
    ("cfed2f44-16df-4bf3-833a-79405198b277", conn(r"C:\Windows\System32\dllhost.exe", remote_ip="8.8.8.8"), True),
    ("cfed2f44-16df-4bf3-833a-79405198b277", conn(r"C:\Windows\System32\dllhost.exe", remote_ip="192.168.0.7"),
     False),
    ("cfed2f44-16df-4bf3-833a-79405198b277", conn(r"C:\Windows\System32\dllhost.exe", remote_ip="fd00::7"), False),
]


@pytest.mark.parametrize(("rule_id", "event", "expected"), CASES)
def test_sigmahq_rule_behaves_per_spec(sigmahq: RuleSet, rule_id: str, event: object, expected: bool) -> None:
    if isinstance(event, NetworkConnection):
        findings = sigmahq.match_connection(event)
    else:
        assert isinstance(event, ProcessStarted)
        findings = sigmahq.match_process(event)
    assert (rule_id in {f.rule for f in findings}) is expected


def test_every_sigmahq_fixture_has_a_hit_case(sigmahq: RuleSet) -> None:
    covered = {rule_id for rule_id, _, expected in CASES if expected}
    assert covered == {r.rule for r in sigmahq.rules}


def test_sigmahq_categories_follow_attack_techniques(sigmahq: RuleSet) -> None:
    by_id = {r.rule: r for r in sigmahq.rules}
    assert by_id["b52e84a3-029e-4529-b09b-71d19dd27e94"].category == "remote_access"  # attack.t1219
    assert by_id["1d08ac94-400d-4469-a82f-daee9a908849"].category == "tunnel"  # attack.t1572
    assert by_id["3e8207c5-fcd2-4ea6-9418-15d45b4890e4"].category == "automation"  # attack.t1185
    assert by_id["e2072cab-8c9a-459b-b63c-40ae79e27031"].severity == "low"


def test_unsupported_sigmahq_rules_are_rejected_with_the_reason() -> None:
    errors = lint([FIXTURES / "sigmahq_rejected"])
    reasons = {(Path(e.file).name, e.field, e.message.split(":")[0]) for e in errors}
    assert ("net_connection_win_rdp_from_dc.yml", "detection.selection_hosts.host|expand",
            "modifier 'expand' is not supported") in reasons
    assert ("proc_creation_win_susp_elevated_system_shell.yml", "detection.selection_user.LogonId",
            "field 'LogonId' is not provided for process_creation events; known fields") in reasons
    rules, _ = RuleSet.from_paths([FIXTURES / "sigmahq_rejected"])
    assert len(rules) == 0
