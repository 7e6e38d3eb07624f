"""`terminal-guard`: the agent's command line (contract in DESIGN.md). Parses and dispatches only."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from agent import __version__
from agent.commands.common import CommandError, config_from, emit
from agent.config import AgentConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="terminal-guard", description="Terminal Guard (终端卫士) endpoint agent")
    parser.add_argument("--version", action="version", version=f"terminal-guard {__version__}")
    parser.add_argument("--config", metavar="FILE", help="agent.toml (default: the platform's path)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("run", help="run the agent service in the foreground")

    enroll = sub.add_parser("enroll", help="register this PC with HQ")
    enroll.add_argument("--hq", required=True, metavar="URL", help="HQ base URL, e.g. https://hq.example:8443")
    enroll.add_argument("--token", help="enrollment token (or --token-file, or env TG_ENROLL_TOKEN)")
    enroll.add_argument("--token-file", metavar="FILE", help="read the token from FILE")
    enroll.add_argument("--ca", metavar="FILE", help="HQ CA certificate (PEM) to pin")
    enroll.add_argument("--force", action="store_true", help="replace an existing enrollment")
    enroll.add_argument("--json", action="store_true")

    configure = sub.add_parser("configure", help="write agent.toml for a silent install (HQ URL, token, outlet, CA)")
    configure.add_argument("--hq", metavar="URL")
    configure.add_argument("--token", help="one-time enrollment token, kept in a 0600 file until first start")
    configure.add_argument("--outlet", metavar="ID")
    configure.add_argument("--ca", metavar="FILE", help="HQ CA certificate (PEM) to pin")

    unenroll = sub.add_parser("unenroll", help="tell HQ this PC is leaving and forget its identity (uninstall)")
    unenroll.add_argument("--json", action="store_true")

    status = sub.add_parser("status", help="enrollment, HQ reachability, last heartbeat, spool, policy, staff")
    status.add_argument("--json", action="store_true")

    doctor = sub.add_parser("doctor", help="check config, keystore, permissions, HQ TLS pin and clock")
    doctor.add_argument("--json", action="store_true")

    scan = sub.add_parser("scan", help="one-shot scan: processes, sessions, network, or --files for exports")
    scan.add_argument("--json", action="store_true")
    scan.add_argument("--files", nargs="+", metavar="PATH", help="files or folders to scan for exports")
    scan.add_argument("--exact", action="store_true",
                      help="with --files: count every row, also after a file is found critical (slower on large files)")

    rules = sub.add_parser("rules", help="rule files")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True, metavar="SUBCOMMAND")
    lint = rules_sub.add_parser("lint", help="validate Sigma-compatible rule files")
    lint.add_argument("paths", nargs="+", metavar="PATH")
    lint.add_argument("--json", action="store_true")

    signin = sub.add_parser("signin", help="sign staff in on this terminal (password on stdin)",
                            description="Signs a staff member in through the running agent; the session is bound "
                                        "to this PC. The password is read from stdin (one line).")
    signin.add_argument("--staff", required=True, metavar="ID")
    sub.add_parser("signout", help="sign the current staff out")
    ack = sub.add_parser("acknowledge", help="show the data-handling policy and acknowledge it (staff id on stdin)")
    ack.add_argument("--staff", required=True, metavar="ID", help="the signed-in staff member")
    proof = sub.add_parser("proof", help="print binding headers for a business request",
                           description="Prints the bound session token and a one-time proof for one request "
                                       "(X-TG-Session and X-TG-Proof); the device key never leaves the agent.")
    proof.add_argument("--method", required=True, help="the request's HTTP method, e.g. GET")
    proof.add_argument("--url", required=True,
                       help="the request's absolute URL, or - to read it from stdin (a URL naming a waybill "
                            "should not sit in the process list, which the process sensor reports)")
    proof.add_argument("--json", action="store_true")
    return parser


def _dispatch_binding(config: AgentConfig, args: argparse.Namespace) -> int:
    from agent.commands import binding

    if args.command == "signin":
        return binding.run_signin(config, staff=args.staff)
    if args.command == "signout":
        return binding.run_signout(config)
    if args.command == "acknowledge":
        return binding.run_acknowledge(config, staff=args.staff)
    return binding.run_proof(config, method=args.method, url=args.url, as_json=args.json)


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "configure":
        from agent.commands.configure import run_configure
        from agent.platform import current_platform

        path = Path(args.config) if args.config else current_platform().default_config_path()
        run_configure(path, hq=args.hq, token=args.token, outlet=args.outlet, ca=args.ca)
        print(f"wrote {path}")
        return 0
    config = config_from(args.config)
    if args.command in ("signin", "signout", "acknowledge", "proof"):
        return _dispatch_binding(config, args)
    if args.command == "run":
        from agent.commands.run import run_service

        return run_service(config)
    if args.command == "enroll":
        from agent.commands.enroll import run_enroll

        return run_enroll(config, args)
    if args.command == "unenroll":
        from agent.commands.enroll import run_unenroll

        return run_unenroll(config, as_json=args.json)
    if args.command == "status":
        from agent.commands.status import collect_status

        emit(collect_status(config), as_json=args.json)
        return 0
    if args.command == "doctor":
        from agent.commands.doctor import run_doctor

        return run_doctor(config, as_json=args.json)
    if args.command == "scan":
        from agent.commands.scan import run_scan

        return run_scan(config, files=args.files, as_json=args.json, exact=args.exact)
    if args.command == "rules":
        from agent.commands.rules import run_lint

        return run_lint(args.paths, as_json=args.json)
    raise CommandError(f"unknown command {args.command}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return dispatch(args)
    except CommandError as exc:
        print(f"terminal-guard: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
