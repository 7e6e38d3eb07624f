"""`python -m hq.demo`: start the waybill app (a child process) and the gateway in front of it."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from hq.binding.gateway import GatewayVerifier
from hq.demo.gateway import create_gateway

KEY_ENV = "TG_GATEWAY_KEY"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, timeout_s: float = 20.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the waybill app did not listen on port {port} within {timeout_s:.0f} s")


def _key(args: argparse.Namespace) -> str:
    if args.gateway_key_file:
        return Path(args.gateway_key_file).read_text("utf-8").strip().splitlines()[-1]
    key = os.environ.get(KEY_ENV, "").strip()
    if not key:
        raise SystemExit(f"give --gateway-key-file FILE or ${KEY_ENV} (terminal-guard-hq gateway-key create)")
    return key


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hq.demo", description="Demo gateway + waybill-lookup app.")
    parser.add_argument("--hq", required=True, metavar="URL", help="HQ base URL")
    parser.add_argument("--ca", metavar="FILE", help="HQ CA certificate (DIR/ca.pem of the HQ)")
    parser.add_argument("--gateway-key-file", metavar="FILE", help=f"gateway key (or ${KEY_ENV})")
    parser.add_argument("--port", type=int, default=8600, help="gateway port (default 8600)")
    parser.add_argument("--app-port", type=int, help="waybill app port (default: a free one)")
    parser.add_argument("--public-url", help="the gateway's URL as clients use it (default http://127.0.0.1:PORT)")
    parser.add_argument("--outlets", default="o1,o2,o3")
    parser.add_argument("--per-outlet", type=int, default=1000)
    args = parser.parse_args(argv)
    app_port = args.app_port or _free_port()
    app = subprocess.Popen([sys.executable, "-m", "hq.demo.waybill_app", "--port", str(app_port),
                            "--outlets", args.outlets, "--per-outlet", str(args.per_outlet)])
    verifier = GatewayVerifier(args.hq, key=_key(args), ca_file=args.ca)
    try:
        _wait_listening(app_port)
        public = args.public_url or f"http://127.0.0.1:{args.port}"
        gateway = create_gateway(verifier=verifier, app_url=f"http://127.0.0.1:{app_port}", public_url=public)
        print(f"demo gateway on {public} in front of the waybill app on http://127.0.0.1:{app_port}", flush=True)
        uvicorn.run(gateway, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    finally:
        verifier.close()
        app.terminate()
        app.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
