"""terminal-guard-hq analyst / api-token: password on stdin, errors on stderr with exit 2, --json lines."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from hq.cli import main


@pytest.fixture
def base(db_url: str, tmp_path: Path) -> list[str]:
    return ["--db", db_url, "--data-dir", str(tmp_path / "hq")]


def run(base: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str,
        stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    capsys.readouterr()
    code = main([*base, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_analyst_add_list_reset_and_disable(base: list[str], capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run(base, capsys, monkeypatch, "analyst", "add", "--id", "li.wei", "--role", "analyst",
                         stdin="a long enough password\n")
    assert (code, out.strip()) == (0, "analyst li.wei added with role analyst"), err
    code, _, err = run(base, capsys, monkeypatch, "analyst", "add", "--id", "li.wei", "--role", "admin",
                       stdin="a long enough password\n")
    assert code == 2 and "already exists (use --reset" in err
    code, _, _ = run(base, capsys, monkeypatch, "analyst", "add", "--id", "li.wei", "--role", "admin", "--reset",
                     stdin="another long password\n")
    assert code == 0
    code, out, _ = run(base, capsys, monkeypatch, "analyst", "list", "--json")
    assert [json.loads(line)["role"] for line in out.splitlines()] == ["admin"]
    assert run(base, capsys, monkeypatch, "analyst", "disable", "--id", "li.wei")[0] == 0
    code, out, _ = run(base, capsys, monkeypatch, "analyst", "list", "--json")
    assert json.loads(out)["disabled"] is True
    assert "a long enough password" not in out


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["--id", "ok", "--role", "viewer"], "short\n", "at least 12 characters"),
    (["--id", "ok", "--role", "viewer"], "", "first line of standard input"),
    (["--id", "ok", "--role", "viewer"], " padded password \n", "whitespace"),
    (["--id", "-bad id", "--role", "viewer"], "a long enough password\n", "id: expected"),
])
def test_analyst_add_refuses_bad_input_with_a_located_message(
        base: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        args: list[str], stdin: str, message: str) -> None:
    code, _, err = run(base, capsys, monkeypatch, "analyst", "add", *args, stdin=stdin)
    assert code == 2 and message in err and err.startswith("terminal-guard-hq: error:")


def test_api_tokens_are_printed_once_and_listed_by_name(base: list[str], capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(base, capsys, monkeypatch, "api-token", "create", "--name", "prometheus")
    token = out.strip().splitlines()[-1]
    assert code == 0 and token.startswith("tgm_")
    code, out, _ = run(base, capsys, monkeypatch, "api-token", "list", "--json")
    assert json.loads(out)["name"] == "prometheus" and token not in out
    assert run(base, capsys, monkeypatch, "api-token", "revoke", "--name", "prometheus")[0] == 0
    code, _, err = run(base, capsys, monkeypatch, "api-token", "revoke", "--name", "prometheus")
    assert code == 2 and "no active token" in err
    code, _, err = run(base, capsys, monkeypatch, "api-token", "create", "--name", "bad name!")
    assert code == 2 and "--name" in err
