"""Compiling rules in a child process: same result as in-process, no pySigma in the caller, a cache that
survives restarts and refuses damage, and failures that come back as errors instead of exceptions."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from agent.rules import RuleError, RuleSet, builtin_rules, builtin_texts
from agent.rules.cache import KEEP_ENTRIES, RuleCache, cache_key, decode_entry
from agent.rules.codec import FORMAT
from agent.rules.isolated import COMPILER, COMPILER_FIELD, compile_isolated, decode_answer
from agent.sensors.observations import NetworkConnection
from tests.agent.rules.builders import proc, rule_text
from tests.agent.rules.test_builtin_pack import BENIGN, POSITIVES

ROOT = Path(__file__).resolve().parents[3]
DUMPER = r"C:\Users\clerk\Desktop\运单导出.exe"
POLICY = [
    ("policy.rules[0]", rule_text("sel:\n  Image|endswith: '\\运单导出.exe'\ncondition: sel", title="运单导出工具")),
    ("policy.rules[1]", rule_text("sel:\n  Image|bogus: x\ncondition: sel")),
]


def python_worker(code: str) -> list[str]:
    """A stand-in worker: a real child process running `code`."""
    return [sys.executable, "-c", code]


FAILING_WORKER = python_worker("import sys; sys.exit(3)")


def only_entry(folder: Path) -> Path:
    entries = sorted(folder.glob("*.json"))
    assert len(entries) == 1, entries
    return entries[0]


# ---------------------------------------------------------------- the caller stays free of pySigma


def test_compiling_and_matching_in_the_service_leaves_no_sigma_or_yaml_loaded(tmp_path: Path) -> None:
    script = f"""
import json, sys
from pathlib import Path
from agent.rules.isolated import compile_isolated
from agent.rules.engine import builtin_texts
from agent.sensors.observations import ProcessInfo, ProcessStarted
event = ProcessStarted(process=ProcessInfo(pid=9, name="ToDesk.exe", exe=r"C:\\Program Files\\ToDesk\\ToDesk.exe",
                                           cmdline=("ToDesk.exe",)), parent=None, observed_at=0.0)
for round_no in range(2):  # a cold start (worker) and a restart (cache)
    rules, errors = compile_isolated(builtin_texts(), cache_dir=Path({str(tmp_path)!r}))
    findings = rules.match_process(event)
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("sigma", "yaml"))
    print(json.dumps({{"rules": len(rules), "errors": [str(e) for e in errors], "findings": len(findings),
                      "heavy": heavy, "cached": len(list(Path({str(tmp_path)!r}).glob("*.json")))}}))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    cold, warm = (json.loads(line) for line in done.stdout.splitlines())
    expected = {"rules": len(builtin_rules()), "errors": [], "findings": 1, "heavy": [], "cached": 1}
    assert cold == expected
    assert warm == expected


def test_isolated_compile_gives_the_same_rules_and_errors_as_in_process(tmp_path: Path) -> None:
    texts = [*builtin_texts(), *POLICY]
    expected_rules, expected_errors = RuleSet.from_texts(texts)
    rules, errors = compile_isolated(texts, cache_dir=tmp_path)
    assert errors == expected_errors and len(errors) == 1 and errors[0].file == "policy.rules[1]"
    assert rules.rules == expected_rules.rules
    events = [event for _, event in POSITIVES] + BENIGN + [proc(DUMPER, "运单导出.exe --all")]
    for event in events:
        if isinstance(event, NetworkConnection):
            assert rules.match_connection(event) == expected_rules.match_connection(event)
        else:
            assert rules.match_process(event) == expected_rules.match_process(event)
    assert {f.title for f in rules.match_process(proc(DUMPER, "x"))} == {"运单导出工具"}


def test_without_a_cache_folder_every_call_compiles() -> None:
    rules, errors = compile_isolated(builtin_texts(), cache_dir=None)
    assert (len(rules), errors) == (len(builtin_rules()), [])


# ---------------------------------------------------------------- cache


def test_a_restart_is_served_from_the_cache_without_starting_a_worker(tmp_path: Path) -> None:
    first, _ = compile_isolated([*builtin_texts(), *POLICY], cache_dir=tmp_path)
    again, errors = compile_isolated([*builtin_texts(), *POLICY], cache_dir=tmp_path, worker=FAILING_WORKER)
    assert again.rules == first.rules
    assert [e.file for e in errors] == ["policy.rules[1]"]  # the rule errors of that compile, not a worker error


def test_changed_rules_are_compiled_again(tmp_path: Path) -> None:
    compile_isolated(builtin_texts(), cache_dir=tmp_path)
    rules, errors = compile_isolated([*builtin_texts(), POLICY[0]], cache_dir=tmp_path)
    assert (len(rules), errors) == (len(builtin_rules()) + 1, [])
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_cache_key_covers_texts_names_format_and_agent_version() -> None:
    texts = [("a.yml", "x"), ("b.yml", "y")]
    key = cache_key(texts)
    assert len(key) == 64 and key == cache_key(list(texts))
    assert key != cache_key([("a.yml", "x"), ("b.yml", "y ")])
    assert key != cache_key([("c.yml", "x"), ("b.yml", "y")])
    assert key != cache_key(list(reversed(texts)))
    assert key != cache_key(texts, agent_version="99.0")


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_a_needle(path: Path) -> None:
    # Still valid JSON and a valid rule set: only the checksum can tell.
    text = path.read_text(encoding="ascii")
    assert '"needle": "\\\\todesk.exe"' in text
    path.write_text(text.replace('"needle": "\\\\todesk.exe"', '"needle": "\\\\notepad.exe"', 1), encoding="ascii")


def _break_the_structure(path: Path) -> None:
    # The checksum is made to fit, so the strict validation of the rule set must catch it.
    import hashlib

    envelope = json.loads(path.read_text(encoding="ascii"))
    envelope["payload"]["ruleset"]["rules"][0]["severity"] = "urgent"
    canonical = json.dumps(envelope["payload"], sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    envelope["checksum"] = hashlib.sha256(canonical.encode("ascii")).hexdigest()
    path.write_text(json.dumps(envelope), encoding="ascii")


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00\xff not json at all")


def _newer_format(path: Path) -> None:
    envelope = json.loads(path.read_text(encoding="ascii"))
    envelope["format"] = FORMAT + 1
    path.write_text(json.dumps(envelope), encoding="ascii")


@pytest.mark.parametrize("damage", [_truncate, _flip_a_needle, _break_the_structure, _garbage, _newer_format],
                         ids=lambda f: f.__name__.strip("_"))
def test_damaged_cache_is_refused_and_the_rules_compiled_again(tmp_path: Path, damage: object,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    compile_isolated(builtin_texts(), cache_dir=tmp_path)
    entry = only_entry(tmp_path)
    damage(entry)  # type: ignore[operator]
    with caplog.at_level(logging.WARNING, logger="agent.rules.cache"):
        rules, errors = compile_isolated(builtin_texts(), cache_dir=tmp_path)
    assert (len(rules), errors) == (len(builtin_rules()), [])
    assert rules.match_process(proc(r"C:\Program Files\ToDesk\ToDesk.exe", "ToDesk.exe"))
    assert "is damaged" in caplog.text and entry.name in caplog.text
    decode_entry(only_entry(tmp_path).read_bytes(), entry.name.removesuffix(".json"))  # rewritten, valid


def test_damaged_cache_with_a_failing_worker_gives_an_error_not_the_damaged_rules(tmp_path: Path) -> None:
    compile_isolated(builtin_texts(), cache_dir=tmp_path)
    _flip_a_needle(only_entry(tmp_path))
    rules, errors = compile_isolated(builtin_texts(), cache_dir=tmp_path, worker=FAILING_WORKER)
    assert len(rules) == 0 and [e.field for e in errors] == [COMPILER_FIELD]
    assert list(tmp_path.glob("*.json")) == []  # the damaged entry was deleted


def test_only_the_newest_entries_are_kept(tmp_path: Path) -> None:
    cache = RuleCache(tmp_path)
    keys = [cache_key([(f"r{i}.yml", "x")]) for i in range(KEEP_ENTRIES + 2)]
    for key in keys:
        cache.store(key, RuleSet(), [])
        time.sleep(0.01)  # distinct modification times
    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted(f"{k}.json" for k in keys[-KEEP_ENTRIES:])
    assert list(tmp_path.glob("*.tmp")) == []


def test_a_cache_that_cannot_be_written_is_logged_and_the_rules_still_load(tmp_path: Path,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="agent.rules.cache"):
        rules, errors = compile_isolated(builtin_texts(), cache_dir=blocker / "cache")
    assert (len(rules), errors) == (len(builtin_rules()), [])
    assert "cannot write the rule cache" in caplog.text


# ---------------------------------------------------------------- worker failures


def test_worker_timeout_is_reported_and_the_worker_is_stopped(tmp_path: Path) -> None:
    pid_file = tmp_path / "worker.pid"
    worker = python_worker(f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)")
    started = time.monotonic()
    rules, errors = compile_isolated(builtin_texts(), cache_dir=tmp_path / "cache", timeout_s=1.5, worker=worker)
    assert time.monotonic() - started < 15
    assert len(rules) == 0
    assert len(errors) == 1
    assert (errors[0].file, errors[0].field) == (COMPILER, COMPILER_FIELD)
    assert "did not answer within 1.5 s" in errors[0].message and "no rules are active" in errors[0].message
    pid = int(pid_file.read_text(encoding="utf-8"))
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not (tmp_path / "cache").exists() or list((tmp_path / "cache").glob("*.json")) == []


def test_when_the_worker_fails_the_last_compiled_rules_stay_active(tmp_path: Path) -> None:
    before, _ = compile_isolated(builtin_texts(), cache_dir=tmp_path)
    rules, errors = compile_isolated([*builtin_texts(), POLICY[0]], cache_dir=tmp_path, timeout_s=1.5,
                                     worker=python_worker("import time; time.sleep(60)"))
    assert rules.rules == before.rules
    assert len(errors) == 1 and "keeping the last compiled rules" in errors[0].message
    assert f"{len(before)} rules" in errors[0].message


@pytest.mark.parametrize(
    ("worker", "expected"),
    [
        (python_worker("import sys; sys.stderr.write('Traceback ...\\nMemoryError: boom\\n'); sys.exit(1)"),
         "compile worker exited with status 1: MemoryError: boom"),
        (python_worker("print('not json')"), "compile worker gave an invalid answer"),
        (python_worker("pass"), "compile worker gave an invalid answer: answer: empty"),
        (python_worker("print('{\"format\": 1, \"ruleset\": {\"format\": 1, \"rules\": [{}]}, \"errors\": []}')"),
         "invalid answer: rules[0]: missing key 'key'"),
        (python_worker("print('{\"format\": 1, \"ruleset\": {\"format\": 1, \"rules\": []}, \"errors\": [1]}')"),
         "invalid answer: answer.errors[0]: expected a mapping"),
        (["/nonexistent/terminal-guard-python"], "cannot start the compile worker"),
        ([""], "no program to run the compile worker"),
    ],
    ids=["crash", "garbage", "silent", "bad-rule", "bad-error", "missing-program", "empty-executable"],
)
def test_worker_failure_is_an_error_with_an_empty_rule_set(tmp_path: Path, worker: list[str], expected: str) -> None:
    rules, errors = compile_isolated(builtin_texts(), cache_dir=tmp_path, worker=worker)
    assert len(rules) == 0
    assert errors == [RuleError(COMPILER, COMPILER_FIELD, errors[0].message)]
    assert expected in errors[0].message
    assert list(tmp_path.glob("*.json")) == []  # a failure is never cached


def test_worker_rejects_a_malformed_request_with_exit_status_2() -> None:
    done = subprocess.run([sys.executable, "-m", "agent.rules.compile_worker"], input=b'{"format": 1, "texts": [1]}',
                          capture_output=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2
    assert b"malformed request: request.texts[0]: expected a [name, text] pair" in done.stderr
    assert done.stdout == b""


def test_worker_answers_in_the_documented_protocol() -> None:
    request = json.dumps({"format": FORMAT, "texts": [list(POLICY[0]), list(POLICY[1])]})
    done = subprocess.run([sys.executable, "-m", "agent.rules.compile_worker"], input=request.encode("ascii"),
                          capture_output=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.isascii()
    answer = json.loads(done.stdout)
    assert set(answer) == {"format", "ruleset", "errors"} and answer["format"] == FORMAT
    assert [e["file"] for e in answer["errors"]] == ["policy.rules[1]"]
    rules, errors = decode_answer(done.stdout)
    assert [r.title for r in rules.rules] == ["运单导出工具"] and errors[0].field == "detection.sel.Image|bogus"
