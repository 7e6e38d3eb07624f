"""The redactor: customer values in command lines and paths become typed marks, tools stay readable.

Every value here is generated at random in a valid shape (tests/agent/exports/exports_fakedata.py
for IDs); none is a real person's.
"""

from __future__ import annotations

import random
import time

import pytest

from agent.findings import process_finding_fields
from agent.redact import redact, redact_optional
from agent.rules import RuleSet
from agent.sensors.observations import ProcessInfo, ProcessStarted
from tests.agent.exports.exports_fakedata import Generator

# Every mobile segment the scanner knows (patterns.MOBILE_SEGMENT), written out as prefixes.
SEGMENTS = [str(s) for s in (*range(130, 140), *range(145, 150), *range(150, 154), *range(155, 160), 162,
                              *range(165, 168), *range(170, 179), *range(180, 190), *range(190, 194),
                              *range(195, 200))]


def digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def mobile(rng: random.Random) -> str:
    segment = rng.choice(SEGMENTS)
    return segment + digits(rng, 11 - len(segment))


def waybills(rng: random.Random) -> list[str]:
    """One number of each default carrier shape (patterns.DEFAULT_WAYBILL_PATTERNS)."""
    return [
        "SF" + digits(rng, 12), "SF" + digits(rng, 13), "JD" + digits(rng, 13), "JDVA" + digits(rng, 11),
        "YT" + digits(rng, 13), "JT" + digits(rng, 13), "EK" + digits(rng, 9) + "CN",
        "75" + digits(rng, 10), "88" + digits(rng, 11), "43" + digits(rng, 13), "98" + digits(rng, 11),
    ]


def written_forms(number: str) -> list[str]:
    """How a mobile number appears on a command line or in a file name."""
    a, b, c = number[:3], number[3:7], number[7:]
    return [number, f"+86{number}", f"+86 {number}", f"0086-{number}", f"86{number}", f"{a} {b} {c}",
            f"{a}-{b}-{c}", f"+86 {a}-{b}-{c}"]


@pytest.fixture
def rng() -> random.Random:
    return random.Random(20261123)


def test_mobile_numbers_in_every_written_form_become_phone_marks(rng: random.Random) -> None:
    for _ in range(50):
        number = mobile(rng)
        for form in written_forms(number):
            for line, expected in [
                (f"python export.py --phone {form} --headless", "python export.py --phone <phone> --headless"),
                (f"--phone={form}", "--phone=<phone>"),
                (f"tel{form}", "tel<phone>"),
                (f"https://h/api?mobile={form}&x=1", "https://h/api?mobile=<phone>&x=1"),
            ]:
                assert redact(line) == expected, (form, line)


def test_mobile_numbers_inside_file_names_become_phone_marks(rng: random.Random) -> None:
    number = mobile(rng)
    assert redact(f"D:\\导出\\客户{number}.csv") == "D:\\导出\\客户<phone>.csv"
    assert redact(f"--out=/tmp/{number}_list.xlsx") == "--out=/tmp/<phone>_list.xlsx"
    assert redact(f"/home/clerk/Downloads/收件人{number}-{mobile(rng)}.xls") == \
        "/home/clerk/Downloads/收件人<phone>-<phone>.xls"


def test_id_numbers_become_id_marks_with_or_without_a_final_x() -> None:
    gen = Generator(seed=5)
    ids = [gen.id_number() for _ in range(300)]
    assert any(value.endswith("X") for value in ids)
    for value in ids:
        assert redact(f"--id {value} --lower {value.lower()}") == "--id <id_number> --lower <id_number>"
        assert redact(f"C:\\scans\\{value}.jpg") == "C:\\scans\\<id_number>.jpg"


def test_every_default_waybill_shape_becomes_a_waybill_mark(rng: random.Random) -> None:
    for number in waybills(rng):
        assert redact(f"track.py --waybill {number}") == "track.py --waybill <waybill>", number
        assert redact(f"/tmp/{number}_label.pdf") == "/tmp/<waybill>_label.pdf", number
        assert redact(f"--q={number.lower()}") == "--q=<waybill>", number


def test_email_addresses_become_email_marks_but_a_user_at_an_ip_address_stays(rng: random.Random) -> None:
    local = f"zhang.wei{digits(rng, 3)}+vip"
    assert redact(f"send.py --to {local}@example.com.cn --cc {mobile(rng)}@qq.com") == \
        "send.py --to <email> --cc <email>"
    assert redact("ssh clerk@10.0.0.5 -p 2222") == "ssh clerk@10.0.0.5 -p 2222"


def test_long_digit_runs_are_hidden_wherever_they_are(rng: random.Random) -> None:
    run = "9" + digits(rng, 13)  # no known shape: neither a mobile, an ID nor a waybill
    assert redact(f"--order={run}") == "--order=<number>"
    assert redact(f"/tmp/order{run}x.csv") == "/tmp/order<number>x.csv"
    assert redact(f"/tmp/客户{run}.csv") == "/tmp/客户<number>.csv"


def test_addresses_become_address_marks() -> None:
    gen = Generator(seed=8)
    for _ in range(100):
        address = gen.address()
        assert redact(f"label.py --to {address} --copies 2") == "label.py --to <address> --copies 2", address
        assert redact(f"C:\\labels\\{address}.pdf") == "C:\\labels\\<address>.pdf", address


def test_long_stretches_of_address_words_are_redacted_whole_and_quickly() -> None:
    # Unbounded, the scanner's address pattern needs about a minute for this (ms per position).
    crafted = " ".join("路" + "市" * 47 for _ in range(2000))
    started = time.perf_counter()
    out = redact(crafted)
    assert time.perf_counter() - started < 2.0
    assert set(out.split(" ")) == {"<address>"}
    assert redact("市场部道具清单.xlsx") == "市场部道具清单.xlsx"  # short, and no place before the unit


@pytest.mark.parametrize("line", [
    "/opt/webdriver/chromedriver --port=9515 --allowed-ips=",
    "/venv/bin/mitmdump --listen-port 8080 --set block_global=false",
    "frp_0.58.1_linux_amd64/frpc -c ./frpc.toml",
    "/usr/bin/python3.11 scrape.py --headless --since 2026-11-23 --pid 4242001",
    "C:\\Program Files\\Oray\\SunLogin\\向日葵\\SunloginClient.exe --mod=service",
    "C:\\Users\\clerk\\Downloads\\waybills_20261123.csv",
    "chrome --user-data-dir=/tmp/.org.chromium.Chromium.a1B2c3 --remote-debugging-port=9222",
    "ssh -R 8080:localhost:80 serveo.net",
])
def test_ordinary_command_lines_and_paths_pass_unchanged(line: str) -> None:
    assert redact(line) == line


def test_random_command_lines_keep_no_generated_value(rng: random.Random) -> None:
    gen = Generator(seed=13)
    joiners = [" ", "=", "/", "\\", "_", "-", ",", ";", ":", "客户", "?q=", "'", '"', "tel", "编号"]
    for _ in range(400):
        values = [mobile(rng), gen.id_number(), rng.choice(waybills(rng)), f"{mobile(rng)}@163.com",
                  "7" + digits(rng, 12)]
        rng.shuffle(values)
        parts = ["python3", "export.py"]
        for value in values:
            shown = rng.choice(written_forms(value)) if value.isdigit() and len(value) == 11 else value
            parts += [rng.choice(joiners), shown]
        line = "".join(parts)
        out = redact(line)
        leaked = [v for v in values if v in out or v.split("@")[0] in out]
        assert leaked == [], (line, out)
        assert not any(run for run in "".join(c if c.isdigit() else " " for c in out).split() if len(run) >= 11)
        assert redact(out) == out  # the marks themselves are left alone


def test_absent_fields_stay_absent() -> None:
    assert redact_optional(None) is None
    assert redact("") == ""


def test_rules_match_the_raw_command_line_and_the_finding_carries_it_redacted(rng: random.Random) -> None:
    number = mobile(rng)
    rule = """
title: Phone Number Passed To A Script
id: 0f5e0f71-8b7e-4b55-9a0e-7d4c8a1d2e01
status: test
logsource:
    category: process_creation
detection:
    selection:
        CommandLine|re: '--phone \\d{11}'
    condition: selection
level: high
tags:
    - tg.category.scripting
"""
    rules, errors = RuleSet.from_texts([("phone.yml", rule)])
    assert errors == []
    parent = ProcessInfo(pid=10, name="bash", exe=f"/home/{number}/bin/bash", cmdline=("bash",))
    proc = ProcessInfo(pid=11, name="python3", exe="/usr/bin/python3",
                       cmdline=("python3", "export.py", "--phone", number, "--out", f"/tmp/客户{number}.csv"))
    [finding] = rules.match_process(ProcessStarted(process=proc, parent=parent, observed_at=1.0))
    assert finding.fields["process.command_line"] == "python3 export.py --phone <phone> --out /tmp/客户<phone>.csv"
    assert finding.fields["process.parent.executable"] == "/home/<phone>/bin/bash"
    assert number not in str(finding.to_event().to_wire())


def test_finding_fields_of_a_process_name_the_tool_but_not_the_customer(rng: random.Random) -> None:
    number = mobile(rng)
    proc = ProcessInfo(pid=7, name=f"{number}.exe", exe=f"C:\\tools\\{number}.exe",
                       cmdline=(f"C:\\tools\\{number}.exe", "--port=9515"))
    fields = process_finding_fields(proc, ProcessInfo(pid=1, name="explorer.exe", exe=None))
    assert fields == {
        "process.pid": 7, "process.start": None, "process.name": "<phone>.exe",
        "process.executable": "C:\\tools\\<phone>.exe",
        "process.command_line": "C:\\tools\\<phone>.exe --port=9515", "process.parent.name": "explorer.exe",
        "process.parent.executable": None,
    }
