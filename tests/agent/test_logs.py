from __future__ import annotations

import json
import logging
import os
import stat
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from agent.config import LogConfig
from agent.logs import CONSOLE_HANDLER_NAME, FILE_HANDLER_NAME, LOG_FILE_NAME, JsonFormatter, setup_logging


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def read_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def ours(kind: str) -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if h.get_name() == kind]


def test_lines_are_json_with_the_agreed_keys(tmp_path: Path) -> None:
    config = LogConfig(dir=tmp_path / "logs")
    setup_logging(config)
    logging.getLogger("agent.uplink").info("sent %d events to %s", 3, "hq", extra={"fields": {"batch": 3}})
    lines = read_lines(config.dir / LOG_FILE_NAME)
    assert len(lines) == 1
    line = lines[0]
    assert line["level"] == "INFO"
    assert line["logger"] == "agent.uplink"
    assert line["thread"] == threading.current_thread().name
    assert line["msg"] == "sent 3 events to hq"
    assert line["fields"] == {"batch": 3}
    assert "exc" not in line
    stamp = datetime.fromisoformat(str(line["ts"]))
    assert stamp.utcoffset() == timedelta(0)
    assert abs((datetime.now(stamp.tzinfo) - stamp).total_seconds()) < 60


def test_log_dir_is_created_private(tmp_path: Path) -> None:
    config = LogConfig(dir=tmp_path / "state" / "logs")
    setup_logging(config)
    assert stat.S_IMODE(os.stat(config.dir).st_mode) == 0o700


def test_exceptions_are_captured_with_traceback(tmp_path: Path) -> None:
    config = LogConfig(dir=tmp_path)
    setup_logging(config)
    try:
        empty: dict[str, int] = {}
        empty["missing"]
    except KeyError:
        logging.getLogger("agent.test").exception("lookup failed")
    (line,) = read_lines(tmp_path / LOG_FILE_NAME)
    assert line["level"] == "ERROR"
    assert line["msg"] == "lookup failed"
    assert "Traceback (most recent call last)" in str(line["exc"])
    assert "KeyError: 'missing'" in str(line["exc"])


def test_non_ascii_and_unserialisable_fields_still_log(tmp_path: Path) -> None:
    setup_logging(LogConfig(dir=tmp_path))
    logging.getLogger("agent").warning("终端卫士 started", extra={"fields": {"path": tmp_path, "n": 1}})
    (line,) = read_lines(tmp_path / LOG_FILE_NAME)
    assert line["msg"] == "终端卫士 started"
    assert line["fields"] == {"path": str(tmp_path), "n": 1}


def test_bad_format_arguments_do_not_lose_the_line() -> None:
    # Formatted directly: pytest's own capture handler would raise on this record first.
    record = logging.LogRecord("agent", logging.ERROR, __file__, 1, "expected %d things", ("many",), None)
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"].startswith("expected %d things (bad log arguments ('many',)")


def test_rotation_rotates_and_every_line_parses(tmp_path: Path) -> None:
    config = LogConfig(dir=tmp_path, max_bytes=2000, backups=3)
    setup_logging(config)
    log = logging.getLogger("agent.rotation")
    for index in range(400):
        log.info("line %04d %s", index, "x" * 40)
    files = sorted(tmp_path.glob(LOG_FILE_NAME + "*"))
    assert [f.name for f in files] == [LOG_FILE_NAME, *(f"{LOG_FILE_NAME}.{n}" for n in (1, 2, 3))]
    for path in files:
        assert path.stat().st_size <= 2000
        assert read_lines(path)  # every line of every file is one JSON object
    # The newest lines are in the live file, older ones in .1; the oldest were dropped.
    newest = read_lines(tmp_path / LOG_FILE_NAME)[-1]
    assert str(newest["msg"]).startswith("line 0399")
    kept = sum(len(read_lines(path)) for path in files)
    assert 0 < kept < 400


def test_second_setup_does_not_duplicate_handlers(tmp_path: Path) -> None:
    config = LogConfig(dir=tmp_path)
    setup_logging(config, console=True)
    setup_logging(config, console=True)
    assert len(ours(FILE_HANDLER_NAME)) == 1
    assert len(ours(CONSOLE_HANDLER_NAME)) == 1
    logging.getLogger("agent").info("once")
    assert [line["msg"] for line in read_lines(tmp_path / LOG_FILE_NAME)] == ["once"]


def test_setup_without_console_removes_an_earlier_console_handler(tmp_path: Path) -> None:
    setup_logging(LogConfig(dir=tmp_path), console=True)
    setup_logging(LogConfig(dir=tmp_path), console=False)
    assert ours(CONSOLE_HANDLER_NAME) == []


def test_console_handler_writes_the_same_json_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogConfig(dir=tmp_path), console=True)
    logging.getLogger("agent.console").warning("hello")
    err_lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["msg"] for line in err_lines] == ["hello"]
    assert err_lines[0]["logger"] == "agent.console"
    assert sys.stderr is not None


def test_level_from_config_filters(tmp_path: Path) -> None:
    setup_logging(LogConfig(dir=tmp_path, level="WARNING"))
    logging.getLogger("agent").info("hidden")
    logging.getLogger("agent").warning("shown")
    assert [line["msg"] for line in read_lines(tmp_path / LOG_FILE_NAME)] == ["shown"]
