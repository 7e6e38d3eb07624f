"""Coverage-guided fuzzing of every target in tests/fuzz/targets.py with atheris (libFuzzer).

    python tests/fuzz/run_atheris.py                  # every target, 100,000 inputs each
    python tests/fuzz/run_atheris.py --runs 5000 --only rule_text policy_body

Each target runs in its own process (libFuzzer exits the process when it is done), starting from
a corpus this script generates (built-in rules, their compiled form, a generated export, policy
bodies, signed headers, HQ bodies and answers), with the product's own modules instrumented.
A crash leaves libFuzzer's reproducer file (crash-*) in --artifacts and fails the run; rerun one
input with: python tests/fuzz/run_atheris.py --only NAME --reproduce FILE
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RUNS = 100_000
MAX_LEN = {"rule_text": 4096, "export_file": 8192, "compiled_rules": 8192}


def seeds(name: str) -> list[bytes]:
    """Valid inputs for a target to start from, generated here (nothing copied from real people)."""
    from agent.rules import RuleSet, builtin_texts
    from agent.signing import sign_request

    rules = builtin_texts()
    if name == "rule_text":
        return [text.encode() for _, text in rules]
    if name == "compiled_rules":
        return [json.dumps(RuleSet.from_texts([item])[0].to_compiled()).encode() for item in rules[:10]]
    if name == "export_file":
        from tests.agent.exports.exports_fakedata import HEADER, Generator

        rows = [HEADER, *Generator(seed=5).waybill_rows(60)]
        return [b"\x00" + "\n".join(",".join(row) for row in rows).encode("utf-8")]
    if name == "policy_body":
        return [json.dumps({"protected_hosts": ["waybill.example.com"], "approved_programs": ["waybill.exe"],
                            "thresholds": {"export_high_rows": 20}}).encode()]
    if name == "policy_document":
        body = {"protected_hosts": ["waybill.example.com"], "rules": [rules[0][1]]}
        return [b"\x00" + json.dumps({"version": 3, "issued_at": "2026-11-23T00:00:00Z", "body": body}).encode()]
    if name == "signed_headers":
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        headers = sign_request(Ed25519PrivateKey.generate(), method="POST", path="/v1/events", body=b"{}",
                               device_id="dev-1", seq=17, timestamp=1_800_000_000)
        return ["\x00".join(headers.values()).encode()]
    if name == "hq_request_bodies":
        event = {"id": "01a2-x", "kind": "finding", "priority": 2, "created": 1.5, "body": {"rule": "r"}}
        return [json.dumps({"events": [event]}).encode(),
                json.dumps({"agent_version": "0.1.0", "lost_events": {"spool_full": 3}}).encode()]
    if name == "hq_answers":
        return [b"\x19120\x00" + json.dumps({"server_time": 1.0, "policy_version": 1}).encode(),
                b"\x4b\x00" + json.dumps({"error": "replayed", "detail": "x", "server_time": 2.0}).encode()]
    if name == "local_channel":
        return [b'{"id":1,"op":"status"}\n{"id":2,"ok":true,"result":{}}\n']
    raise KeyError(name)


def fuzz_one(name: str, runs: int, artifacts: Path, reproduce: Path | None, work: Path) -> None:
    """In the child process: instrument the product, then hand the target to libFuzzer."""
    import atheris

    os.environ["TG_FUZZ_SCRATCH"] = str(work / f"scratch-{name}")

    with atheris.instrument_imports(include=["agent", "hq"]):
        from tests.fuzz.targets import TARGETS

        target = TARGETS[name]
        initial = seeds(name)
    if reproduce is not None:
        target(reproduce.read_bytes())
        print(f"{name}: {reproduce} no longer fails")
        return
    corpus = work / f"corpus-{name}"
    corpus.mkdir(parents=True, exist_ok=True)
    for index, seed in enumerate(initial):
        (corpus / f"seed-{index}").write_bytes(seed)
    argv = [sys.argv[0], f"-runs={runs}", f"-max_len={MAX_LEN.get(name, 2048)}", "-rss_limit_mb=3072",
            "-timeout=30", f"-artifact_prefix={artifacts}/{name}-", "-print_final_stats=1", str(corpus)]
    atheris.Setup(argv, target)
    atheris.Fuzz()


def run_all(names: list[str], runs: int, artifacts: Path) -> int:
    artifacts.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tg-fuzz-run-") as work:
        return _run_all(names, runs, artifacts, Path(work))


def _run_all(names: list[str], runs: int, artifacts: Path, work: Path) -> int:
    failed = []
    for name in names:
        started = time.monotonic()
        done = subprocess.run([sys.executable, __file__, "--child", name, "--runs", str(runs),
                               "--artifacts", str(artifacts), "--work", str(work)],
                              cwd=ROOT, capture_output=True, text=True)
        took = time.monotonic() - started
        stats = [line for line in done.stderr.splitlines() if line.startswith(("stat::number_of_executed_units",
                                                                              "stat::average_exec_per_sec"))]
        executed = next((int(line.split(":")[-1]) for line in stats if "executed_units" in line), 0)
        verdict = "ok" if done.returncode == 0 and executed >= runs else "FAILED"
        print(f"{name}: {verdict}, {executed} inputs in {took:.0f} s (exit {done.returncode})", flush=True)
        if verdict != "ok":
            failed.append(name)
            print("\n".join(done.stderr.splitlines()[-40:]), file=sys.stderr)
    if failed:
        print(f"fuzz targets with a crash or too few inputs: {', '.join(failed)}; reproducers in {artifacts}",
              file=sys.stderr)
        return 1
    return 0


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from tests.fuzz.targets import TARGETS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help=f"inputs per target (default {DEFAULT_RUNS})")
    parser.add_argument("--only", nargs="+", choices=sorted(TARGETS), help="these targets only")
    parser.add_argument("--artifacts", type=Path, default=ROOT / "test-artifacts" / "fuzz",
                        help="where libFuzzer writes crash reproducers")
    parser.add_argument("--reproduce", type=Path, help="run one saved input through --only's single target")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        fuzz_one(args.child, args.runs, args.artifacts, None, args.work)
        return 0
    if args.reproduce:
        with tempfile.TemporaryDirectory(prefix="tg-fuzz-run-") as work:
            fuzz_one((args.only or [""])[0], args.runs, args.artifacts, args.reproduce, Path(work))
        return 0
    os.environ.setdefault("PYTHONHASHSEED", "0")
    return run_all(args.only or sorted(TARGETS), args.runs, args.artifacts)


if __name__ == "__main__":
    sys.exit(main())
