"""JSON-lines logging for the agent: one object per line, rotated by size.

Each line carries ``ts`` (ISO 8601, UTC), ``level``, ``logger``, ``thread`` and ``msg``; a
traceback goes under ``exc`` and structured data passed as ``extra={"fields": {...}}`` under
``fields``. Lines are machine-readable so support can grep and parse them from any outlet PC.
What goes in ``msg`` and ``fields`` is the caller's responsibility: no customer data, ever.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from datetime import UTC, datetime
from typing import Any

from agent.config import LogConfig

LOG_FILE_NAME = "agent.jsonl"
# Our handlers carry these names so a second setup replaces them instead of adding more.
FILE_HANDLER_NAME = "terminal-guard-file"
CONSOLE_HANDLER_NAME = "terminal-guard-console"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "thread": record.threadName,
            "msg": _message(record),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line["fields"] = fields
        # default=str: a field value that JSON cannot hold (a Path, a datetime) still logs.
        return json.dumps(line, ensure_ascii=False, default=str)


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except (TypeError, ValueError) as exc:
        # A format string that does not match its arguments must not lose the line.
        return f"{record.msg!s} (bad log arguments {record.args!r}: {exc})"


def _replace_handler(root: logging.Logger, handler: logging.Handler) -> None:
    for existing in list(root.handlers):
        if existing.get_name() == handler.get_name():
            root.removeHandler(existing)
            existing.close()
    root.addHandler(handler)


def setup_logging(config: LogConfig, *, console: bool = False) -> None:
    """Send the root logger to ``config.dir/agent.jsonl`` (and stderr when ``console``).

    Safe to call again: our handlers are replaced, not added twice, and a console handler from
    an earlier call is removed when ``console`` is now False.
    """
    # 0700: logs name processes, paths and users of this PC; other local users have no business there.
    config.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    root = logging.getLogger()
    formatter = JsonFormatter()

    file_handler = logging.handlers.RotatingFileHandler(
        config.dir / LOG_FILE_NAME, maxBytes=config.max_bytes, backupCount=config.backups, encoding="utf-8"
    )
    file_handler.set_name(FILE_HANDLER_NAME)
    file_handler.setFormatter(formatter)
    _replace_handler(root, file_handler)

    if console:
        console_handler = logging.StreamHandler(sys.stderr)
        console_handler.set_name(CONSOLE_HANDLER_NAME)
        console_handler.setFormatter(formatter)
        _replace_handler(root, console_handler)
    else:
        for existing in [h for h in root.handlers if h.get_name() == CONSOLE_HANDLER_NAME]:
            root.removeHandler(existing)
            existing.close()

    root.setLevel(config.level.upper())
