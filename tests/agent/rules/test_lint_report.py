"""`rules lint` front end: real subprocess, output lines with file and field, exit codes 0/1/2."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from agent.rules.lint_report import run_lint
from tests.agent.rules.builders import rule_text

REPO = Path(__file__).parents[3]
GOOD = rule_text("sel:\n  Image|endswith: '\\frpc.exe'\ncondition: sel")
BAD = rule_text("sel:\n  CommandLine|expand: '%admins%'\ncondition: sel")


def lint_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent.rules.lint_report", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)


def test_lint_command_reports_file_and_field_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "good.yml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "bad.yml").write_text(BAD, encoding="utf-8")
    done = lint_cli(str(tmp_path))
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"{tmp_path / 'bad.yml'}: detection.sel.CommandLine|expand: modifier 'expand'")
    assert lines[-1] == "1 rules OK, 1 errors in 1 files"
    assert done.stderr == ""  # no stray RE2 or pySigma logging


def test_lint_command_on_the_builtin_pack_is_clean() -> None:
    done = lint_cli("agent/rules/builtin")
    assert done.returncode == 0, done.stdout
    assert done.stdout.strip().endswith("rules OK, 0 errors in 0 files")


def test_lint_command_exits_2_when_a_path_cannot_be_read(tmp_path: Path) -> None:
    done = lint_cli(str(tmp_path / "nope.yml"))
    assert done.returncode == 2
    assert "nope.yml: path: no such file or directory" in done.stdout


def test_lint_json_is_one_object_per_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text(BAD.replace("level: high", "level: loud"), encoding="utf-8")
    out = io.StringIO()
    assert run_lint([str(tmp_path)], as_json=True, out=out) == 1
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {(r["field"]) for r in records[:-1]} == {"level", "detection.sel.CommandLine|expand"}
    assert all(r["file"] == str(tmp_path / "bad.yml") for r in records[:-1])
    assert records[-1] == {"rules": 0, "errors": 2, "files_with_errors": 1}


def test_lint_reports_an_invalid_regex_without_stderr_noise(tmp_path: Path) -> None:
    (tmp_path / "re.yml").write_text(rule_text("sel:\n  CommandLine|re: '(?<=x)y'\ncondition: sel"), encoding="utf-8")
    done = lint_cli(str(tmp_path))
    assert done.returncode == 1
    assert "detection.sel.CommandLine|re: invalid regular expression '(?<=x)y' (RE2 syntax)" in done.stdout
    assert done.stderr == ""
