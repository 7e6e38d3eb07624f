"""The `staff` and `gateway-key` subcommands of terminal-guard-hq (added to hq.cli's parser)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import sessionmaker

from hq.password_input import read_password
from hq.staff import commands

SessionsOf = Callable[[argparse.Namespace], sessionmaker]


def _print(records: list[dict[str, Any]], as_json: bool, line: Callable[[dict[str, Any]], str]) -> None:
    for record in records:
        print(json.dumps(record, ensure_ascii=False) if as_json else line(record))


def _plain(record: dict[str, Any]) -> str:
    return "  ".join(f"{key}={value}" for key, value in record.items() if value is not None)


def add_staff_commands(sub: Any, common: argparse.ArgumentParser, sessions_of: SessionsOf) -> None:
    staff = sub.add_parser("staff", parents=[common], help="outlet staff: add, import, disable, suspend, clear")
    staff_sub = staff.add_subparsers(dest="staff_command", metavar="COMMAND")
    staff_sub.required = True

    def command(name: str, help_text: str, run: Callable[[argparse.Namespace], int], **kw: Any) -> Any:
        parser = staff_sub.add_parser(name, parents=[common], help=help_text, **kw)
        parser.set_defaults(run=run)
        return parser

    p = command("add", "add a staff member (password read from stdin)",
                lambda a: _done(commands.staff_add(sessions_of(a), staff_id=a.id, outlet_id=a.outlet, name=a.name,
                                                   password=read_password())),
                description="Adds one staff member. The password is read from stdin (one line), or asked twice "
                            "at a terminal; it is stored only as an argon2id hash.")
    p.add_argument("--id", required=True, help="staff id (letters, digits, . _ -)")
    p.add_argument("--outlet", required=True, metavar="ID", help="the outlet the staff member works at")
    p.add_argument("--name", required=True, help="full name (kept at HQ only)")

    p = command("import", "add staff from a CSV file (id, outlet, name, password or password_hash)",
                lambda a: _lines(commands.staff_import(sessions_of(a), path=a.file)))
    p.add_argument("file", type=Path, metavar="FILE.csv")

    for name, help_text, disabled in (("disable", "disable a staff account (sign-in refused)", True),
                                      ("enable", "enable a disabled staff account again", False)):
        p = command(name, help_text, _toggle(sessions_of, disabled))
        p.add_argument("--id", required=True)

    p = command("suspend", "suspend a staff member's bound sessions everywhere (verify denies within 1 s)",
                lambda a: _done(commands.staff_suspend(sessions_of(a), staff_id=a.id, reason=a.reason)))
    p.add_argument("--id", required=True)
    p.add_argument("--reason", default="suspended by an analyst", help="kept with the suspension")

    p = command("clear", "lift a suspension (and a password lockout)",
                lambda a: _done(commands.staff_clear(sessions_of(a), staff_id=a.id)))
    p.add_argument("--id", required=True)

    p = command("list", "staff with outlet and status",
                lambda a: _show(commands.staff_list(sessions_of(a), outlet_id=a.outlet), a.json,
                                commands.staff_line))
    p.add_argument("--outlet", metavar="ID")
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    p = command("sessions", "bound sessions, newest first",
                lambda a: _show(commands.staff_sessions(sessions_of(a), staff_id=a.id, limit=a.limit), a.json,
                                _plain))
    p.add_argument("--id", help="only this staff member")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")

    p = command("acks", "the policy acknowledgement register, newest first",
                lambda a: _show(commands.staff_acks(sessions_of(a), staff_id=a.id, limit=a.limit), a.json, _plain))
    p.add_argument("--id", help="only this staff member")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")


def add_gateway_commands(sub: Any, common: argparse.ArgumentParser, sessions_of: SessionsOf) -> None:
    gateway = sub.add_parser("gateway-key", parents=[common], help="API keys of business-system gateways (verify)")
    gateway_sub = gateway.add_subparsers(dest="gateway_command", metavar="COMMAND")
    gateway_sub.required = True
    p = gateway_sub.add_parser("create", parents=[common], help="print a new gateway key (last line of stdout)")
    p.add_argument("--name", required=True, help="which gateway uses it, e.g. waybill-gw-1")
    p.set_defaults(run=lambda a: _lines(commands.gateway_key_create(sessions_of(a), name=a.name)))
    p = gateway_sub.add_parser("revoke", parents=[common], help="revoke every key of a gateway")
    p.add_argument("--name", required=True)
    p.set_defaults(run=lambda a: _done(commands.gateway_key_revoke(sessions_of(a), name=a.name)))
    p = gateway_sub.add_parser("list", parents=[common], help="gateway keys (names and dates, never the keys)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=lambda a: _show(commands.gateway_key_list(sessions_of(a)), a.json, _plain))


def _toggle(sessions_of: SessionsOf, disabled: bool) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return _done(commands.staff_disable(sessions_of(args), staff_id=args.id, disabled=disabled))

    return run


def _done(line: str) -> int:
    print(line)
    return 0


def _lines(lines: list[str]) -> int:
    for line in lines:
        print(line)
    return 0


def _show(records: list[dict[str, Any]], as_json: bool, line: Callable[[dict[str, Any]], str]) -> int:
    _print(records, as_json, line)
    return 0
