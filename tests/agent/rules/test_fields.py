"""Field mapping from our observations to Sigma fields, Windows and Linux paths, finding shape."""

from __future__ import annotations

import pytest

from agent.rules.fields import make_record, network_fields, path_variants, process_fields
from tests.agent.rules.builders import conn, hits, info, proc, rule_text, ruleset

ENDS_CHROMEDRIVER = "sel:\n  Image|endswith: '\\chromedriver.exe'\ncondition: sel"


@pytest.mark.parametrize(
    "exe",
    [
        r"C:\Users\clerk\AppData\Local\Temp\chromedriver.exe",
        "/usr/bin/chromedriver",  # Linux: backslash spelling plus ".exe" variant
        "/usr/lib/chromium/CHROMEDRIVER",
    ],
)
def test_windows_style_rule_matches_windows_and_linux_paths(exe: str) -> None:
    assert hits(ENDS_CHROMEDRIVER, proc(exe, "chromedriver --port=9515"))


def test_bare_process_name_still_matches_when_the_exe_path_is_unknown() -> None:
    assert hits(ENDS_CHROMEDRIVER, proc(None, "chromedriver --port=9515", name="chromedriver.exe"))
    assert hits(ENDS_CHROMEDRIVER, proc(None, "chromedriver --port=9515", name="chromedriver"))


@pytest.mark.parametrize("exe", [r"C:\Tools\hoptodesk.exe", "/usr/bin/hoptodesk", r"C:\x\MyToDesk.exe"])
def test_path_separator_keeps_todesk_from_matching_similar_names(exe: str) -> None:
    assert not hits("sel:\n  Image|endswith: '\\ToDesk.exe'\ncondition: sel", proc(exe, "x"))


def test_linux_rules_with_posix_paths_match_as_written() -> None:
    detection = "sel:\n  Image|startswith: '/usr/bin/'\n  Image|endswith: '/base64'\ncondition: sel"
    assert hits(detection, proc("/usr/bin/base64", "base64 -d"))
    assert not hits(detection, proc(r"C:\Tools\base64.exe", "base64 -d"))


def test_path_variants() -> None:
    assert path_variants(r"C:\A\b.exe") == (r"C:\A\b.exe",)
    assert path_variants("/opt/x/tool") == ("/opt/x/tool", r"\opt\x\tool", "\\opt\\x\\tool.exe")
    assert path_variants("/opt/x/tool.EXE") == ("/opt/x/tool.EXE", r"\opt\x\tool.EXE")
    assert path_variants("tool") == ("tool", r"\tool", r"\tool.exe")
    assert path_variants(None) == ()
    assert path_variants("") == ()


def test_process_fields_map_every_sigma_field() -> None:
    event = proc(
        r"C:\Program Files\ToDesk\ToDesk.exe",
        '"C:\\Program Files\\ToDesk\\ToDesk.exe" --autostart',
        pid=4321,
        ppid=812,
        user="OUTLET-07\\clerk",
        sha256="ab" * 32,
        original_file_name="ToDesk.exe",
        company="Hainan ToDesk",
        product="ToDesk",
        description="ToDesk Remote Desktop",
        parent=info(r"C:\Windows\explorer.exe", r"C:\Windows\Explorer.EXE", pid=812),
    )
    fields = process_fields(event)
    assert fields["Image"] == (r"C:\Program Files\ToDesk\ToDesk.exe",)
    assert fields["CommandLine"] == ('"C:\\Program Files\\ToDesk\\ToDesk.exe" --autostart',)
    assert fields["ParentImage"] == (r"C:\Windows\explorer.exe",)
    assert fields["ParentCommandLine"] == (r"C:\Windows\Explorer.EXE",)
    assert fields["ParentProcessName"] == ("explorer.exe",)
    assert fields["User"] == ("OUTLET-07\\clerk",)
    assert fields["Hashes"] == ("SHA256=" + "AB" * 32,)
    assert fields["ProcessId"] == ("4321",)
    assert fields["ParentProcessId"] == ("812",)
    assert fields["OriginalFileName"] == ("ToDesk.exe",)
    assert fields["Company"] == ("Hainan ToDesk",)
    assert fields["Product"] == ("ToDesk",)
    assert fields["Description"] == ("ToDesk Remote Desktop",)
    assert fields["CurrentDirectory"] == ()  # the sensor does not report one


@pytest.mark.parametrize(
    ("detection", "expected"),
    [
        ("ParentImage|endswith: '\\explorer.exe'", True),
        ("ParentCommandLine|contains: 'explorer'", True),
        ("ParentProcessName: 'explorer.exe'", True),
        ("User|endswith: '\\clerk'", True),
        ("Hashes|contains: 'SHA256=ABAB'", True),
        ("ProcessId: 4321", True),
        ("ParentProcessId: 812", True),
        ("Company|contains: 'todesk'", True),
        ("Description|contains: 'remote desktop'", True),
        ("ParentImage|endswith: '\\services.exe'", False),
    ],
)
def test_each_process_field_is_matchable(detection: str, expected: bool) -> None:
    event = proc(r"C:\PF\ToDesk.exe", "ToDesk.exe", pid=4321, ppid=812, user="OUTLET\\clerk", sha256="ab" * 32,
                 company="Hainan ToDesk", description="ToDesk Remote Desktop",
                 parent=info(r"C:\Windows\explorer.exe", r"C:\Windows\Explorer.EXE", pid=812))
    assert hits(f"sel:\n  {detection}\ncondition: sel", event) is expected


def test_outbound_connection_fields() -> None:
    event = conn(r"C:\PF\AnyDesk\AnyDesk.exe", hostname="relay-1.net.anydesk.com", remote_ip="198.51.100.9",
                 remote_port=443, local_ip="192.168.1.20", local_port=50123)
    fields = network_fields(event)
    assert fields["Initiated"] == ("true",)
    assert fields["DestinationIp"] == ("198.51.100.9",)
    assert fields["DestinationPort"] == ("443",)
    assert fields["DestinationHostname"] == ("relay-1.net.anydesk.com",)
    assert fields["SourceIp"] == ("192.168.1.20",)
    assert fields["SourcePort"] == ("50123",)
    assert fields["SourceHostname"] == ()
    assert fields["Protocol"] == ("tcp",)
    assert fields["DestinationIsIpv6"] == ("false",)


def test_inbound_connection_puts_the_remote_peer_in_source_like_sysmon() -> None:
    event = conn(r"C:\VNC\tvnserver.exe", direction="inbound", hostname="helper.example", remote_ip="2001:db8::5",
                 remote_port=61000, local_ip="fe80::1", local_port=5900)
    fields = network_fields(event)
    assert fields["Initiated"] == ("false",)
    assert fields["SourceIp"] == ("2001:db8::5",)
    assert fields["SourcePort"] == ("61000",)
    assert fields["SourceHostname"] == ("helper.example",)
    assert fields["DestinationIp"] == ("fe80::1",)
    assert fields["DestinationPort"] == ("5900",)
    assert fields["DestinationHostname"] == ()
    assert fields["SourceIsIpv6"] == ("true",)


def test_connection_without_a_known_process_still_matches_network_fields() -> None:
    event = conn(None, hostname="tunnel.us.ngrok.com")
    assert hits("sel:\n  DestinationHostname|endswith: '.ngrok.com'\ncondition: sel", event)
    assert not hits("sel:\n  Image|endswith: '.exe'\ncondition: sel", event)


def test_record_drops_empty_values_and_folds_case() -> None:
    record = make_record({"Image": ("C:\\X\\A.EXE",), "CommandLine": ()})
    assert "CommandLine" not in record.raw
    assert record.folded["Image"] == ("c:\\x\\a.exe",)
    assert "c:\\x\\a.exe" in record.haystack


def test_process_finding_carries_the_contract_fields() -> None:
    rules = ruleset(rule_text("sel:\n  Image|endswith: '\\ToDesk.exe'\ncondition: sel", title="ToDesk",
                              rule_id="9663cf89-d71c-42e5-86a2-9d72c8b1c8a8",
                              extra="tags:\n    - tg.category.remote_access\n"))
    event = proc(r"C:\PF\ToDesk\ToDesk.exe", "ToDesk.exe --silent", pid=77,
                 parent=info(r"C:\Windows\explorer.exe", "explorer", pid=5))
    (finding,) = rules.match_process(event)
    assert finding.rule == "9663cf89-d71c-42e5-86a2-9d72c8b1c8a8"
    assert finding.title == "ToDesk"
    assert finding.severity == "high"
    assert finding.category == "remote_access"
    assert finding.observed_at == event.observed_at
    assert finding.fields == {
        "process.pid": 77,
        "process.start": event.process.create_time,
        "process.name": "ToDesk.exe",
        "process.executable": r"C:\PF\ToDesk\ToDesk.exe",
        "process.command_line": "ToDesk.exe --silent",
        "process.parent.name": "explorer.exe",
        "process.parent.executable": r"C:\Windows\explorer.exe",
    }
    assert finding.to_event().kind == "finding"


def test_network_finding_carries_destination_fields() -> None:
    rules = ruleset(rule_text("sel:\n  DestinationHostname|endswith: '.todesk.com'\ncondition: sel",
                              category="network_connection"))
    (finding,) = rules.match_connection(conn(r"C:\PF\x.exe", hostname="api.todesk.com", remote_ip="203.0.113.8",
                                             remote_port=443))
    assert finding.fields["destination.ip"] == "203.0.113.8"
    assert finding.fields["destination.port"] == 443
    assert finding.fields["destination.domain"] == "api.todesk.com"
    assert finding.fields["network.direction"] == "outbound"
    assert finding.fields["process.executable"] == r"C:\PF\x.exe"


def test_rules_only_see_events_of_their_log_source() -> None:
    rules = ruleset(rule_text("sel:\n  Image|endswith: '\\ToDesk.exe'\ncondition: sel"))
    assert rules.match_process(proc(r"C:\PF\ToDesk.exe", "x"))
    assert rules.match_connection(conn(r"C:\PF\ToDesk.exe")) == []


# os.fsdecode(b"\xff\xfe"): bytes of a command line that are not UTF-8 arrive as lone surrogates.
NOT_UTF8_CMDLINE = "/opt/webdriver/chromedriver --port=9515 --user-data-dir=/tmp/\udcff\udcfe-profile"


@pytest.mark.parametrize(
    "detection",
    [
        "sel:\n  CommandLine|re: '--user-data-dir=/tmp/.*-profile'\ncondition: sel",
        "sel:\n  CommandLine|contains|all:\n    - '--port='\n    - '\\udcff'\ncondition: sel",
    ],
)
def test_a_command_line_that_is_not_utf8_is_still_matched(detection: str) -> None:
    assert hits(detection, proc("/opt/webdriver/chromedriver", NOT_UTF8_CMDLINE))


def test_record_values_are_valid_utf8_with_undecodable_bytes_escaped() -> None:
    record = make_record({"CommandLine": (NOT_UTF8_CMDLINE,), "Image": ("/opt/\u5bfc\u51fa/tool",)})
    assert record.raw["CommandLine"] == ("/opt/webdriver/chromedriver --port=9515 --user-data-dir=/tmp/"
                                         "\\udcff\\udcfe-profile",)
    assert record.raw["Image"] == ("/opt/\u5bfc\u51fa/tool",), "valid non-ASCII text is kept as it is"
    assert all(v.encode("utf-8") for v in record.all_folded)
