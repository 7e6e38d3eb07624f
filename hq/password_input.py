"""A new password for an HQ command (staff add, analyst add): never on the command line."""

from __future__ import annotations

import getpass
import sys
from typing import Any

from hq.commands import CommandError


def read_password(stream: Any = None) -> str:
    """From a terminal: asked twice, not echoed. Otherwise: the first line of standard input."""
    stream = stream or sys.stdin
    if stream.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise CommandError("password: the two entries differ")
        return first
    line = stream.readline()
    if not line:
        raise CommandError("password: expected it on the first line of standard input, got nothing")
    return str(line).rstrip("\r\n")
