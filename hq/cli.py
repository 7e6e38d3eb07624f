"""terminal-guard-hq: the HQ server and its operator commands (contract in DESIGN.md).

Every command has --help; errors go to stderr with exit code 2; --json prints one JSON object
per line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from hq import commands
from hq.commands import CommandError
from hq.console import cli as console_cli
from hq.db import create_schema, make_engine, make_sessions
from hq.settings import DATA_DIR_ENV, DEFAULT_PORT, DEFAULT_SILENT_AFTER_S, Settings, default_data_dir, default_db_url
from hq.staff.cli import add_gateway_commands, add_staff_commands
from hq.timefmt import parse_duration, parse_since

PROG = "terminal-guard-hq"


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of at least 1")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of seconds") from None
    if not 0 < value < 10**7:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of seconds above zero")
    return value


def _siem_url(text: str) -> str:
    from hq.siem.sinks import SinkConfigError, open_sink

    try:
        open_sink(text).close()
    except SinkConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _common(default: Any) -> argparse.ArgumentParser:
    """--db/--data-dir, accepted before or after the command name."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--db", metavar="URL", default=default,
                        help="database URL: sqlite:///FILE (default: DIR/hq.sqlite3) or postgresql://...")
    parent.add_argument("--data-dir", metavar="DIR", type=Path, default=default,
                        help=f"HQ data directory: CA, keys, SQLite file (default: ${DATA_DIR_ENV} or ./hq-data)")
    return parent


def _add_serve(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("serve", parents=[common], help="run the HQ server (HTTPS)",
                       description="Run HQ. On first start makes DIR/ca.pem (pin it on agents), a server "
                       "certificate and DIR/policy-key.pem; prints one line with the URL once listening.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--cert", type=Path, help="PEM server certificate to use instead of HQ's own CA")
    p.add_argument("--key", type=Path, help="PEM private key of --cert")
    p.add_argument("--silent-after-s", type=_seconds, default=DEFAULT_SILENT_AFTER_S,
                   help="a PC is silent after its heartbeat interval plus this many seconds (default 60)")
    p.add_argument("--heartbeat-interval-s", type=_seconds, default=10.0,
                   help="interval assumed for PCs that never reported theirs (default 10)")
    p.add_argument("--flush-interval-s", type=_seconds, default=1.0,
                   help="how often heartbeat state and audit records are written (default 1)")
    p.add_argument("--max-inflight", type=_positive_int, help="answer 429 above this many requests in flight")
    p.add_argument("--siem", metavar="URL", type=_siem_url,
                   help="also send every event as an ECS JSON line to syslog+udp://HOST:PORT, "
                   "syslog+tcp://HOST:PORT (RFC 5424) or an http(s):// URL (NDJSON POST)")
    p.add_argument("--bench-noop", action="store_true",
                   help="also serve GET /v1/noop (unauthenticated) as the benchmark's ceiling; never in production")
    p.set_defaults(run=_cmd_serve)


def _add_queries(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("devices", parents=[common], help="list PCs with status and last heartbeat")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--silent-after-s", type=_seconds, default=DEFAULT_SILENT_AFTER_S,
                   help="the serve setting, to judge PCs while HQ is down (default 60)")
    p.set_defaults(run=_cmd_devices)

    p = sub.add_parser("revoke", parents=[common], help="revoke a PC: its requests get 401 until re-enrolled")
    p.add_argument("--device", required=True, metavar="ID", help="device id (see `devices`)")
    p.set_defaults(run=_cmd_revoke)

    p = sub.add_parser("events", parents=[common], help="stored events and alerts, oldest first")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--since", metavar="T", help="ISO time (local if no zone) or a duration back from now (24h)")
    p.add_argument("--kind", metavar="K", help="only this kind, e.g. alert.device_silent")
    p.add_argument("--device", metavar="ID", help="only this device")
    p.add_argument("--limit", type=_positive_int, default=1000, help="at most this many, the newest (default 1000)")
    p.set_defaults(run=_cmd_events)

    p = sub.add_parser("audit", parents=[common], help="the audit trail: enrollments, refusals, operator actions")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--since", metavar="T", help="ISO time or a duration back from now")
    p.add_argument("--limit", type=_positive_int, default=1000, help="at most this many, the newest (default 1000)")
    p.set_defaults(run=_cmd_audit)


def _add_token(sub: Any, common: argparse.ArgumentParser) -> None:
    token = sub.add_parser("token", parents=[common], help="enrollment tokens")
    token_sub = token.add_subparsers(dest="token_command", metavar="COMMAND")
    token_sub.required = True
    p = token_sub.add_parser("create", parents=[common], help="print a new enrollment token (last line of stdout)")
    p.add_argument("--outlet", required=True, metavar="ID", help="the outlet the enrolled PCs belong to")
    p.add_argument("--uses", type=_positive_int, default=1, help="how many PCs may enroll with it (default 1)")
    p.add_argument("--ttl", type=_duration, default=24 * 3600.0, help="lifetime: 24h, 90m, 3600s, 7d (default 24h)")
    p.set_defaults(run=_cmd_token_create)


def _add_policy(sub: Any, common: argparse.ArgumentParser) -> None:
    policy = sub.add_parser("policy", parents=[common], help="signed policy")
    policy_sub = policy.add_subparsers(dest="policy_command", metavar="COMMAND")
    policy_sub.required = True
    p = policy_sub.add_parser("publish", parents=[common], help="validate, sign and publish a policy body",
                              description="FILE is a JSON policy body (see agent.policy); it becomes the "
                              "latest version + 1, signed with DIR/policy-key.pem.")
    p.add_argument("file", type=Path, metavar="FILE.json")
    p.set_defaults(run=_cmd_policy_publish)
    p = policy_sub.add_parser("show", parents=[common], help="print the latest signed policy as JSON")
    p.add_argument("--json", action="store_true", help="one line instead of indented")
    p.set_defaults(run=_cmd_policy_show)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Terminal Guard HQ server and operator commands.",
                                     parents=[_common(None)])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    common = _common(argparse.SUPPRESS)
    _add_serve(sub, common)
    _add_token(sub, common)
    _add_queries(sub, common)
    _add_policy(sub, common)
    add_staff_commands(sub, common, _sessions)
    add_gateway_commands(sub, common, _sessions)
    console_cli.add_parsers(sub, common, sessions_of=_sessions, engine_of=_engine)
    return parser


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    data_dir = args.data_dir or default_data_dir()
    return Settings(db_url=args.db or default_db_url(data_dir), data_dir=data_dir, **extra)


def _engine(args: argparse.Namespace) -> Engine:
    settings = _settings(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return make_engine(settings.db_url)


def _sessions(args: argparse.Namespace) -> sessionmaker:
    engine = _engine(args)
    create_schema(engine)
    return make_sessions(engine)


def _emit(records: Iterable[dict[str, Any]], as_json: bool, line: Callable[[dict[str, Any]], str]) -> None:
    for record in records:
        print(commands.json_line(record) if as_json else line(record))


def _since(args: argparse.Namespace) -> float | None:
    if args.since is None:
        return None
    try:
        return parse_since(args.since, now=time.time())
    except ValueError as exc:
        raise CommandError(f"--since: {exc}") from None


def _cmd_serve(args: argparse.Namespace) -> int:
    from hq.serve import ServeError, serve

    settings = _settings(
        args,
        silent_after_s=args.silent_after_s,
        heartbeat_interval_s=args.heartbeat_interval_s,
        flush_interval_s=args.flush_interval_s,
        max_inflight=args.max_inflight,
        bench_noop=args.bench_noop,
        siem_url=args.siem,
    )
    try:
        return serve(settings, host=args.host, port=args.port, cert=args.cert, key=args.key)
    except ServeError as exc:
        raise CommandError(str(exc)) from None


def _cmd_token_create(args: argparse.Namespace) -> int:
    for line in commands.token_create(_sessions(args), outlet_id=args.outlet, uses=args.uses, ttl_s=args.ttl):
        print(line)
    return 0


def _cmd_devices(args: argparse.Namespace) -> int:
    records = commands.devices(
        _sessions(args), silent_after_s=args.silent_after_s, default_interval_s=Settings.heartbeat_interval_s
    )
    if args.json:
        _emit(records, True, str)
    else:
        for line in commands.device_table(records):
            print(line)
    return 0


def _cmd_revoke(args: argparse.Namespace) -> int:
    print(commands.revoke(_sessions(args), device_id=args.device))
    return 0


def _cmd_events(args: argparse.Namespace) -> int:
    since = _since(args)
    records = commands.events(_sessions(args), since=since, kind=args.kind, device_id=args.device, limit=args.limit)
    _emit(records, args.json, commands.event_line)
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    since = _since(args)
    _emit(commands.audit(_sessions(args), since=since, limit=args.limit), args.json, commands.audit_line)
    return 0


def _cmd_policy_publish(args: argparse.Namespace) -> int:
    data_dir = args.data_dir or default_data_dir()
    print(commands.policy_publish(_sessions(args), data_dir=data_dir, path=args.file))
    return 0


def _cmd_policy_show(args: argparse.Namespace) -> int:
    shown = commands.policy_show(_sessions(args))
    print(json.dumps(shown, ensure_ascii=False) if args.json else json.dumps(shown, ensure_ascii=False, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except CommandError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
    except SQLAlchemyError as exc:
        print(f"{PROG}: error: database: {type(exc).__name__}: {str(exc).splitlines()[0]}", file=sys.stderr)
    except OSError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
