"""RSS of a process that loads the built-in rule pack: compiled in a child process vs in-process.

Each variant runs in a fresh interpreter that loads the pack, matches one ProcessStarted and then
waits; its RSS is read from outside (psutil on the pid), so the measuring code costs the measured
process nothing. Variants, all measured in the same run:
- in_process:      `builtin_rules()` (pySigma + PyYAML imported and kept);
- isolated_cold:   `compile_isolated(builtin_texts(), cache_dir=<empty>)` (starts the compile worker);
- isolated_cached: the same with the cache the cold run wrote (what a restart costs);
- bare:            an interpreter that imports nothing, for scale.
Every variant is measured twice: as is, and after a "service prelude" that imports the standard
modules the agent service has loaded anyway (hashlib with OpenSSL, ssl, json, logging,
subprocess). isolated.py needs hashlib and subprocess, which cost ~4 MB in a bare interpreter but
nothing extra in the service, so the second pair is the saving the service really sees.
Each variant is run `--runs` times; the median is reported. The last line is one JSON object.

    .venv/bin/python bench/bench_rules_memory.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent

PRELUDE = """
import sys
from agent.sensors.observations import ProcessInfo, ProcessStarted
event = ProcessStarted(process=ProcessInfo(pid=7, name="ToDesk.exe", exe=r"C:\\Program Files\\ToDesk\\ToDesk.exe",
                                           cmdline=("ToDesk.exe",)), parent=None, observed_at=0.0)
"""
VARIANTS = {
    "in_process": PRELUDE + """
from agent.rules import builtin_rules
rules, errors = builtin_rules(), []
""",
    "isolated": PRELUDE + """
from pathlib import Path
from agent.rules.isolated import compile_isolated
from agent.rules.engine import builtin_texts
rules, errors = compile_isolated(builtin_texts(), cache_dir=Path(sys.argv[1]))
""",
    "bare": "import sys\nrules, errors, event = None, [], None\n",
}
REPORT = """
import gc, json
findings = len(rules.match_process(event)) if rules is not None else 0
gc.collect()
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"sigma", "yaml"})
print(json.dumps({"rules": len(rules) if rules is not None else 0, "errors": len(errors), "findings": findings,
                  "heavy_modules": heavy}), flush=True)
sys.stdin.readline()
"""


SERVICE_PRELUDE = "import hashlib, json, logging, ssl, subprocess\n"


def measure(variant: str, cache_dir: Path, prelude: str) -> dict[str, object]:
    code = prelude + VARIANTS[variant] + REPORT
    child = subprocess.Popen([sys.executable, "-c", code, str(cache_dir)], cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdin is not None
        line = child.stdout.readline()
        if not line:
            raise RuntimeError(f"variant {variant} exited with status {child.wait()}")
        report = json.loads(line)
        report["rss_mb"] = psutil.Process(child.pid).memory_info().rss / 2**20
        child.stdin.write("\n")
        child.stdin.flush()
    finally:
        child.wait(timeout=30)
    return report


def median_run(variant: str, runs: int, cache_dir: Path, *, cold: bool, prelude: str) -> dict[str, object]:
    reports = []
    for _ in range(runs):
        if cold:
            for entry in cache_dir.glob("*"):
                entry.unlink()
        reports.append(measure(variant, cache_dir, prelude))
    result = dict(reports[0])
    result["rss_mb"] = round(statistics.median(float(r["rss_mb"]) for r in reports), 2)  # type: ignore[arg-type]
    return result


def measure_all(runs: int, prelude: str) -> dict[str, dict[str, object]]:
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        return {
            "bare": median_run("bare", runs, cache, cold=True, prelude=prelude),
            "in_process": median_run("in_process", runs, cache, cold=True, prelude=prelude),
            "isolated_cold": median_run("isolated", runs, cache, cold=True, prelude=prelude),
            "isolated_cached": median_run("isolated", runs, cache, cold=False, prelude=prelude),
        }


def rss(result: dict[str, object]) -> float:
    return float(result["rss_mb"])  # type: ignore[arg-type]


def summarise(label: str, results: dict[str, dict[str, object]]) -> dict[str, object]:
    base = rss(results["in_process"])
    print(label)
    for name, result in results.items():
        print(f"  {name:16s} RSS {rss(result):6.1f} MB  x{rss(result) / base:.2f} of in_process  "
              f"rules={result['rules']} findings={result['findings']} "
              f"sigma/yaml loaded: {result['heavy_modules'] or 'no'}")
    return {
        **{f"{name}_rss_mb": rss(r) for name, r in results.items()},
        "isolated_vs_in_process_ratio": round(rss(results["isolated_cold"]) / base, 3),
        "isolated_cached_vs_in_process_ratio": round(rss(results["isolated_cached"]) / base, 3),
        "saved_mb": round(base - rss(results["isolated_cold"]), 2),
        "isolated_imports_sigma_or_yaml": bool(results["isolated_cold"]["heavy_modules"]
                                               or results["isolated_cached"]["heavy_modules"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    plain = summarise("fresh interpreter:", measure_all(args.runs, ""))
    service = summarise("after the service prelude (hashlib, ssl, json, logging, subprocess):",
                        measure_all(args.runs, SERVICE_PRELUDE))
    print(json.dumps({"bench": "rules_memory", "runs": args.runs, "plain": plain, "service_prelude": service}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
