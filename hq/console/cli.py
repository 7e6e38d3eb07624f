"""terminal-guard-hq subcommands of the console and the ecosystem: analyst, api-token, migrate.

hq.cli builds the parser; these functions add their parsers to it and run against the database
the global --db / --data-dir name.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from hq.commands import CommandError
from hq.console.analysts import AnalystError, add_analyst, disable_analyst, list_analysts
from hq.console.api_tokens import SCOPE_METRICS, SCOPES, create_api_token, list_api_tokens, revoke_api_tokens
from hq.console.roles import ROLES
from hq.migrations import current_revision, head_revision, upgrade
from hq.password_input import read_password
from hq.timefmt import iso

SessionsOf = Callable[[argparse.Namespace], sessionmaker]
EngineOf = Callable[[argparse.Namespace], Engine]


def add_parsers(sub: Any, common: argparse.ArgumentParser, *, sessions_of: SessionsOf, engine_of: EngineOf) -> None:
    analyst = sub.add_parser("analyst", parents=[common], help="console accounts of HQ's security team")
    analyst_sub = analyst.add_subparsers(dest="analyst_command", metavar="COMMAND")
    analyst_sub.required = True
    p = analyst_sub.add_parser("add", parents=[common], help="add an analyst (password read from stdin)",
                               description="Adds a console account. The password (at least 12 characters) is "
                               "read from the first line of stdin, or asked twice on a terminal.")
    p.add_argument("--id", required=True, dest="analyst_id", metavar="ID", help="the analyst's sign-in id")
    p.add_argument("--role", required=True, choices=ROLES,
                   help="viewer reads; analyst also triages, revokes and suspends; admin also issues tokens and "
                   "publishes policy")
    p.add_argument("--reset", action="store_true", help="change the role and password of an existing analyst")
    p.set_defaults(run=lambda args: _analyst_add(args, sessions_of(args)))
    p = analyst_sub.add_parser("list", parents=[common], help="list analysts")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(run=lambda args: _analyst_list(args, sessions_of(args)))
    p = analyst_sub.add_parser("disable", parents=[common], help="disable an analyst; their sessions end at once")
    p.add_argument("--id", required=True, dest="analyst_id", metavar="ID")
    p.set_defaults(run=lambda args: _analyst_disable(args, sessions_of(args)))

    token = sub.add_parser("api-token", parents=[common], help="bearer tokens for machines (Prometheus /metrics)")
    token_sub = token.add_subparsers(dest="api_token_command", metavar="COMMAND")
    token_sub.required = True
    p = token_sub.add_parser("create", parents=[common], help="print a new bearer token (last line of stdout)")
    p.add_argument("--name", required=True, help="what uses it, e.g. prometheus")
    p.add_argument("--scope", default=SCOPE_METRICS, choices=SCOPES, help="what it may read (default metrics)")
    p.set_defaults(run=lambda args: _token_create(args, sessions_of(args)))
    p = token_sub.add_parser("list", parents=[common], help="list tokens (names, never the tokens)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(run=lambda args: _token_list(args, sessions_of(args)))
    p = token_sub.add_parser("revoke", parents=[common], help="revoke every token of this name")
    p.add_argument("--name", required=True)
    p.set_defaults(run=lambda args: _token_revoke(args, sessions_of(args)))

    p = sub.add_parser("migrate", parents=[common], help="create or upgrade the database schema",
                       description="Applies the Alembic migrations up to the newest (serve does this on start).")
    p.add_argument("--check", action="store_true", help="only report; exit 1 when the database is behind")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(run=lambda args: _migrate(args, engine_of(args)))


def _analyst_add(args: argparse.Namespace, sessions: sessionmaker) -> int:
    password = read_password()
    try:
        with sessions.begin() as session:
            add_analyst(session, analyst_id=args.analyst_id, role=args.role, password=password, now=time.time(),
                        replace=args.reset)
    except AnalystError as exc:
        raise CommandError(str(exc)) from None
    print(f"analyst {args.analyst_id} {'reset' if args.reset else 'added'} with role {args.role}")
    return 0


def _analyst_list(args: argparse.Namespace, sessions: sessionmaker) -> int:
    with sessions() as session:
        rows = [{"id": a.id, "role": a.role, "created_at": iso(a.created_at), "last_login_at": iso(a.last_login_at),
                 "disabled": a.disabled_at is not None} for a in list_analysts(session)]
    for row in rows:
        print(json.dumps(row) if args.json else
              f"{row['id']:<24} {row['role']:<8} last login {row['last_login_at'] or 'never'}"
              f"{'  DISABLED' if row['disabled'] else ''}")
    return 0


def _analyst_disable(args: argparse.Namespace, sessions: sessionmaker) -> int:
    try:
        with sessions.begin() as session:
            changed = disable_analyst(session, analyst_id=args.analyst_id, now=time.time())
    except AnalystError as exc:
        raise CommandError(str(exc)) from None
    print(f"analyst {args.analyst_id} {'disabled' if changed else 'was already disabled'}")
    return 0


def _token_create(args: argparse.Namespace, sessions: sessionmaker) -> int:
    try:
        with sessions.begin() as session:
            token = create_api_token(session, name=args.name, scope=args.scope, now=time.time())
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    print(f"token {args.name} (scope {args.scope}); send it as 'Authorization: Bearer <token>'")
    print(token)
    return 0


def _token_list(args: argparse.Namespace, sessions: sessionmaker) -> int:
    with sessions() as session:
        rows = [{"name": t.name, "scope": t.scope, "created_at": iso(t.created_at), "revoked_at": iso(t.revoked_at)}
                for t in list_api_tokens(session)]
    for row in rows:
        print(json.dumps(row) if args.json else
              f"{row['name']:<24} {row['scope']:<8} created {row['created_at']}"
              f"{'  revoked ' + str(row['revoked_at']) if row['revoked_at'] else ''}")
    return 0


def _token_revoke(args: argparse.Namespace, sessions: sessionmaker) -> int:
    with sessions.begin() as session:
        count = revoke_api_tokens(session, name=args.name, now=time.time())
    if count == 0:
        raise CommandError(f"--name: no active token named {args.name!r}")
    print(f"revoked {count} token(s) named {args.name}")
    return 0


def _migrate(args: argparse.Namespace, engine: Engine) -> int:
    head = head_revision()
    if args.check:
        current = current_revision(engine)
        record = {"current": current, "head": head, "up_to_date": current == head}
        print(json.dumps(record) if args.json else
              f"database at revision {current or 'none'}; newest is {head}"
              f"{'' if current == head else ' (run terminal-guard-hq migrate)'}")
        return 0 if current == head else 1
    done = upgrade(engine)
    record = {"before": done.before, "after": done.after, "changed": done.changed}
    print(json.dumps(record) if args.json else
          f"database migrated from {done.before or 'empty'} to {done.after}" if done.changed else
          f"database already at the newest revision {done.after}")
    return 0
