"""terminal-guard-hq commands: --help everywhere, errors on stderr with exit 2, --json lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hq.cli import main
from hq.policy_keys import ensure_policy_key

HQ = [sys.executable, "-m", "hq.cli"]
COMMANDS = [
    ["serve"], ["token"], ["token", "create"], ["devices"], ["revoke"], ["events"], ["audit"],
    ["policy"], ["policy", "publish"], ["policy", "show"],
]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HQ, *args], capture_output=True, text=True, timeout=60)


class Cli:
    def __init__(self, db_url: str, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.base = ["--db", db_url, "--data-dir", str(data_dir)]
        self.data_dir = data_dir
        self._capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self._capsys.readouterr()
        code = main([*self.base, *args])
        out, err = self._capsys.readouterr()
        return code, out, err

    def json(self, *args: str) -> list[dict[str, Any]]:
        code, out, err = self(*args, "--json")
        assert code == 0, err
        return [json.loads(line) for line in out.splitlines()]


@pytest.fixture
def cli(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(db_url, tmp_path / "hq-data", capsys)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: terminal-guard-hq" in capsys.readouterr().out


def test_help_and_errors_of_the_installed_command() -> None:
    done = run("--help")
    assert done.returncode == 0 and "serve" in done.stdout
    done = run("token", "create", "--outlet", "o1", "--ttl", "soon")
    assert done.returncode == 2
    assert done.stdout == ""
    assert "--ttl" in done.stderr and "24h" in done.stderr
    done = run()
    assert done.returncode == 2 and done.stderr


def test_token_create_prints_the_token_last_and_stores_only_its_hash(tmp_path: Path) -> None:
    db = tmp_path / "hq.sqlite3"
    done = run("--db", f"sqlite:///{db}", "--data-dir", str(tmp_path), "token", "create", "--outlet", "o1",
               "--uses", "3", "--ttl", "90m")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    token = lines[-1]
    assert len(token) >= 22 and token.replace("-", "").replace("_", "").isalnum()  # >= 128 bits, url-safe
    assert "3 use(s)" in lines[0]
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("hq.sqlite3*"))
    assert token.encode() not in raw


def test_tokens_are_unique(cli: Cli) -> None:
    tokens = {cli("token", "create", "--outlet", "o1")[1].splitlines()[-1] for _ in range(5)}
    assert len(tokens) == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["token", "create", "--outlet", "o1", "--uses", "0"], "--uses"),
        (["token", "create", "--outlet", "o1", "--ttl", "-5m"], "--ttl"),
        (["token", "create"], "--outlet"),
        (["revoke", "--device", "no-such-device"], "no device with id 'no-such-device'"),
        (["events", "--since", "last tuesday"], "--since"),
        (["audit", "--since", "whenever"], "--since"),
        (["policy", "publish", "/nonexistent/policy.json"], "/nonexistent/policy.json"),
        (["policy", "show"], "no policy yet"),
    ],
)
def test_errors_go_to_stderr_with_exit_2(cli: Cli, args: list[str], message: str) -> None:
    try:
        code, out, err = cli(*args)
    except SystemExit as exc:  # argparse's own errors
        code, out, err = int(exc.code or 0), *cli._capsys.readouterr()
    assert code == 2
    assert out == ""
    assert message in err


def test_policy_publish_rejects_a_bad_file_naming_the_field(cli: Cli, tmp_path: Path) -> None:
    ensure_policy_key(cli.data_dir)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"protected_hosts": ["ok", 5]}), "utf-8")
    code, _out, err = cli("policy", "publish", str(bad))
    assert code == 2
    assert f"{bad}: body.protected_hosts[1]: expected a string" in err
    broken = tmp_path / "broken.json"
    broken.write_text("{", "utf-8")
    code, _, err = cli("policy", "publish", str(broken))
    assert code == 2 and f"{broken}: not valid JSON" in err


def test_policy_publish_without_a_key_says_where_it_comes_from(cli: Cli, tmp_path: Path) -> None:
    file = tmp_path / "p.json"
    file.write_text("{}", "utf-8")
    code, _, err = cli("policy", "publish", str(file))
    assert code == 2
    assert "policy-key.pem" in err and "serve" in err


def test_policy_publish_and_show(cli: Cli, tmp_path: Path) -> None:
    ensure_policy_key(cli.data_dir)
    file = tmp_path / "p.json"
    file.write_text(json.dumps({"approved_programs": ["excel.exe"]}), "utf-8")
    assert cli("policy", "publish", str(file))[1].strip() == "published policy version 1"
    assert cli("policy", "publish", str(file))[1].strip() == "published policy version 2"
    [shown] = cli.json("policy", "show")
    assert shown["policy"]["version"] == 2
    assert shown["policy"]["body"] == {"approved_programs": ["excel.exe"]}


def test_unreachable_database_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--db", "postgresql://nobody@127.0.0.1:1/none", "--data-dir", str(tmp_path), "devices"])
    assert code == 2
    assert "database" in capsys.readouterr().err


def test_empty_listings_print_nothing(cli: Cli) -> None:
    assert cli.json("devices") == []
    assert cli.json("events") == []


def test_events_filters(cli: Cli) -> None:
    import time

    from hq.db import create_schema, make_engine, make_sessions
    from hq.store.events import ORIGIN_AGENT, insert_events

    engine = make_engine(cli.base[1])
    create_schema(engine)
    now = time.time()
    with make_sessions(engine).begin() as session:
        for n, (kind, age) in enumerate([("a", 7200), ("b", 60), ("a", 30)]):
            insert_events(session, device_id="d1" if n < 2 else "d2", received_at=now - age, origin=ORIGIN_AGENT,
                          events=[{"id": f"e{n}", "kind": kind, "priority": 1, "created": now, "body": {}}])
    engine.dispose()
    assert [e["event_id"] for e in cli.json("events")] == ["e0", "e1", "e2"]
    assert [e["event_id"] for e in cli.json("events", "--since", "1h")] == ["e1", "e2"]
    assert [e["event_id"] for e in cli.json("events", "--kind", "a")] == ["e0", "e2"]
    assert [e["event_id"] for e in cli.json("events", "--device", "d2")] == ["e2"]
    assert [e["event_id"] for e in cli.json("events", "--limit", "1")] == ["e2"]
    code, out, _ = cli("events")
    assert code == 0 and len(out.splitlines()) == 3


def test_revoke_is_idempotent_and_audited(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    import time

    from hq.db import create_schema, make_engine, make_sessions
    from hq.store.devices import create_device

    engine = make_engine(cli.base[1])
    create_schema(engine)
    with make_sessions(engine).begin() as session:
        device_id = create_device(session, outlet_id="o1", public_key="k", hostname="pc", os="w",
                                  agent_version="1", now=time.time()).id
    engine.dispose()
    assert cli("revoke", "--device", device_id)[1].startswith("revoked device")
    assert "already revoked" in cli("revoke", "--device", device_id)[1]
    [device] = cli.json("devices")
    assert device["status"] == "revoked"
    assert [r["action"] for r in cli.json("audit")] == ["revoke"]
    code, out, _ = cli("devices")
    assert code == 0 and "revoked" in out.splitlines()[1]


def test_enrollment_tokens_never_start_like_a_command_line_option(tmp_path):
    # A token beginning with "-" broke `terminal-guard enroll --token TOKEN` one time in 64.
    import time

    from hq.db import create_schema, make_engine, make_sessions
    from hq.store.tokens import create_token

    engine = make_engine(f"sqlite:///{tmp_path / 'hq.sqlite3'}")
    create_schema(engine)
    with make_sessions(engine)() as session:
        tokens = [create_token(session, outlet_id="o1", uses=1, ttl_s=60, now=time.time()) for _ in range(300)]
        session.commit()
    assert not [t for t in tokens if t.startswith("-")]
    assert len(set(tokens)) == 300
