"""terminal-guard-hq staff and gateway-key commands, as real subprocesses (password on stdin)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hq.cli import main
from hq.staff.passwords import hash_password, verify_password

HQ = [sys.executable, "-m", "hq.cli"]
COMMANDS = [["staff", c] for c in ("add", "import", "disable", "enable", "suspend", "clear", "list", "sessions",
                                   "acks")] + [["gateway-key", c] for c in ("create", "revoke", "list")]


class Cli:
    def __init__(self, db_url: str, data_dir: Path) -> None:
        self.base = [*HQ, "--db", db_url, "--data-dir", str(data_dir)]

    def __call__(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.base, *args], input=stdin, capture_output=True, text=True, timeout=60)

    def json(self, *args: str) -> list[dict[str, Any]]:
        done = self(*args, "--json")
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture
def cli(db_url: str, tmp_path: Path) -> Cli:
    return Cli(db_url, tmp_path / "hq-data")


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0 and "usage: terminal-guard-hq" in capsys.readouterr().out


def test_add_list_disable_suspend_clear(cli: Cli) -> None:
    added = cli("staff", "add", "--id", "S001", "--outlet", "o1", "--name", "Li Si", stdin="correct horse\n")
    assert added.returncode == 0 and "added staff S001" in added.stdout and "correct horse" not in added.stdout
    again = cli("staff", "add", "--id", "S001", "--outlet", "o1", "--name", "Li Si", stdin="correct horse\n")
    assert again.returncode == 2 and "--id: staff S001 already exists" in again.stderr
    [row] = cli.json("staff", "list")
    assert (row["staff_id"], row["outlet_id"], row["name"], row["status"]) == ("S001", "o1", "Li Si", "active")
    assert "disabled" in cli("staff", "disable", "--id", "S001").stdout
    assert cli.json("staff", "list")[0]["status"] == "disabled"
    assert "enabled" in cli("staff", "enable", "--id", "S001").stdout
    assert "verify denies" in cli("staff", "suspend", "--id", "S001", "--reason", "case 7").stdout
    assert "already suspended" in cli("staff", "suspend", "--id", "S001").stdout
    assert cli.json("staff", "list")[0]["suspended_reason"] == "case 7"
    assert "cleared" in cli("staff", "clear", "--id", "S001").stdout
    assert cli.json("staff", "list")[0]["suspended_at"] is None
    unknown = cli("staff", "suspend", "--id", "NOPE")
    assert unknown.returncode == 2 and "--id: no staff member 'NOPE'" in unknown.stderr
    audit = cli.json("audit")
    assert {"staff_add", "staff_disable", "staff_enable", "staff_suspend", "staff_clear"} <= {
        a["action"] for a in audit}
    assert not any("Li Si" in json.dumps(a) for a in audit)  # names stay in the staff table only


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["--id", "bad id", "--outlet", "o1", "--name", "x"], "correct horse\n", "--id: 'bad id' is not a staff id"),
    (["--id", "S1", "--outlet", "", "--name", "x"], "correct horse\n", "--outlet: expected an outlet id"),
    (["--id", "S1", "--outlet", "o1", "--name", "x"], "short\n", "password: expected 8 to 256 characters"),
    (["--id", "S1", "--outlet", "o1", "--name", "x"], "", "password: expected it on the first line of standard input"),
])
def test_add_refuses_bad_fields_with_exit_2(cli: Cli, args: list[str], stdin: str, message: str) -> None:
    done = cli("staff", "add", *args, stdin=stdin)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_import_adds_all_rows_or_none(cli: Cli, tmp_path: Path) -> None:
    prehashed = hash_password("another secret")
    good = tmp_path / "staff.csv"
    good.write_text("\ufeffid,outlet,name,password\nS1,o1,Wang Wu,first secret\nS2,o2,Zhao Liu,second secret\n",
                    "utf-8")
    done = cli("staff", "import", str(good))
    assert done.returncode == 0 and "imported 2 staff" in done.stdout and "delete it now" in done.stdout
    hashed = tmp_path / "hashed.csv"
    hashed.write_text(f"id,outlet,name,password_hash\nS3,o1,Sun Qi,\"{prehashed}\"\n", "utf-8")
    assert cli("staff", "import", str(hashed)).returncode == 0
    assert [r["staff_id"] for r in cli.json("staff", "list")] == ["S1", "S3", "S2"]
    bad = tmp_path / "bad.csv"
    bad.write_text("id,outlet,name,password\nS4,o1,Ok Person,good secret\nS5,o1,,good secret\n"
                   "S6,o1,Short,pw\nS4,o1,Twice,good secret\nS7,o1\n", "utf-8")
    done = cli("staff", "import", str(bad))
    assert done.returncode == 2
    for line, what in ((3, "name: expected"), (4, "password: expected"), (5, "id: S4 already on line 2"),
                       (6, "expected 4 columns")):
        assert f"{bad}:{line}: {what}" in done.stderr, done.stderr
    assert len(cli.json("staff", "list")) == 3
    exists = tmp_path / "exists.csv"
    exists.write_text("id,outlet,name,password\nS9,o1,New,good secret\nS1,o1,Again,good secret\n", "utf-8")
    done = cli("staff", "import", str(exists))
    assert done.returncode == 2 and f"{exists}:3: id: staff S1 already exists; nothing imported" in done.stderr
    assert len(cli.json("staff", "list")) == 3


@pytest.mark.parametrize(("text", "message"), [
    ("id,outlet,name\nS1,o1,x\n", "expected exactly one of password, password_hash"),
    ("id,name,password\n", "missing column(s) outlet"),
    ("id,outlet,name,password,phone\n", "unknown column(s) phone"),
    ("id,outlet,name,password_hash\nS1,o1,x,plain\n", "password_hash: expected an argon2id PHC string"),
    ("id,outlet,name,password\n", "no staff rows after the header"),
])
def test_import_names_what_is_wrong_with_the_file(cli: Cli, tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "staff.csv"
    path.write_text(text, "utf-8")
    done = cli("staff", "import", str(path))
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_gateway_keys_are_shown_once_and_stored_hashed(cli: Cli, tmp_path: Path) -> None:
    done = cli("gateway-key", "create", "--name", "waybill-gw-1")
    key = done.stdout.splitlines()[-1]
    assert done.returncode == 0 and key.startswith("tgw_") and len(key) > 40
    listed = cli("gateway-key", "list", "--json")
    assert key not in listed.stdout and json.loads(listed.stdout)["name"] == "waybill-gw-1"
    assert "revoked 1 key" in cli("gateway-key", "revoke", "--name", "waybill-gw-1").stdout
    assert cli("gateway-key", "revoke", "--name", "waybill-gw-1").returncode == 2


def test_a_stored_hash_verifies_only_its_password() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert verify_password(stored, "correct horse") and not verify_password(stored, "correct horsE")
    assert not verify_password(None, "correct horse") and not verify_password(stored, "x" * 10_000)
