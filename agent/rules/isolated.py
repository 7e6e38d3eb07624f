"""Compile rules in a child process, so that the agent service never imports pySigma or PyYAML.

pySigma + PyYAML cost the service ~10 MB of RSS that would stay after the rules are compiled
(the agent's budget is 45 MB). So the service hands the rule texts to a short-lived worker
(`python -m agent.rules.compile_worker`, protocol in that module) and rebuilds the predicates
from the JSON it answers with (`RuleSet.from_compiled`, codec.py), importing only our code and
RE2. The answer is cached on disk (cache.py), so a restart with the same rules and the same agent
version starts no worker at all.

Failure never reaches the caller as an exception: a worker that cannot start, crashes, answers
garbage or overruns `timeout_s` (it is then killed) becomes one `RuleError` (file "rule compiler",
field "compiler"), returned with the newest rule set in the cache, whatever its inputs were (the
last rules that compiled are better than none), or with an EMPTY rule set when there is none.

Note for the frozen Windows build: there `sys.executable` is terminal-guard.exe, and
`terminal-guard.exe -P -m agent.rules.compile_worker` would start a second agent. The CLI needs a
hidden `terminal-guard _compile-rules` command that calls `agent.rules.compile_worker.main()`
(same stdin/stdout protocol, same exit status), and the service then passes
`worker=[sys.executable, "_compile-rules"]`. In the venv and the .deb, `sys.executable` is the
Python interpreter and the default below works.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from agent.rules.cache import RuleCache, cache_key
from agent.rules.codec import FORMAT, CompiledFormatError, expect_mapping, load_errors
from agent.rules.engine import RuleSet
from agent.rules.errors import RuleError

log = logging.getLogger(__name__)

WORKER_MODULE = "agent.rules.compile_worker"
COMPILER = "rule compiler"  # the `file` of an error about the compile step itself
COMPILER_FIELD = "compiler"
_NO_WINDOW = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # Windows: no console window flashes up
_STDERR_TAIL = 500


class WorkerFailed(Exception):
    """The compile worker gave no usable answer; the message says why."""


def default_worker() -> list[str]:
    # -P: the service's working directory is not put on sys.path, so no stray `agent/` there is imported.
    return [sys.executable, "-P", "-m", WORKER_MODULE]


def compile_isolated(texts: Sequence[tuple[str, str]], *, cache_dir: Path | None, timeout_s: float = 60,
                     worker: Sequence[str] | None = None) -> tuple[RuleSet, list[RuleError]]:
    """(name, yaml text) pairs -> the good rules and the errors, compiled in a child process.

    Same result as `RuleSet.from_texts(texts)`. `cache_dir` None disables the cache; `worker` is
    the worker's command line (default: this interpreter with `-m agent.rules.compile_worker`).
    """
    pairs = [(name, text) for name, text in texts]
    key = cache_key(pairs)
    cache = RuleCache(cache_dir) if cache_dir is not None else None
    if cache is not None:
        hit = cache.load(key)
        if hit is not None:
            return hit
    try:
        ruleset, errors = run_worker(pairs, timeout_s=timeout_s, worker=worker)
    except WorkerFailed as exc:
        return _fallback(cache, str(exc))
    except Exception as exc:  # the boundary: whatever goes wrong here must not stop the service
        log.exception("compiling the rules in a worker failed")
        return _fallback(cache, f"compiling the rules failed: {type(exc).__name__}: {exc}")
    if cache is not None:
        cache.store(key, ruleset, errors)
    return ruleset, errors


def run_worker(texts: Sequence[tuple[str, str]], *, timeout_s: float,
               worker: Sequence[str] | None = None) -> tuple[RuleSet, list[RuleError]]:
    """Start the worker, feed it the texts, decode its answer; raises WorkerFailed."""
    argv = list(worker) if worker is not None else default_worker()
    if not argv or not argv[0]:
        raise WorkerFailed("no program to run the compile worker with (sys.executable is empty)")
    request = json.dumps({"format": FORMAT, "texts": [[name, text] for name, text in texts]}, ensure_ascii=True)
    try:
        done = subprocess.run(argv, input=request.encode("ascii"), capture_output=True, timeout=timeout_s,
                              check=False, creationflags=_NO_WINDOW)
    except subprocess.TimeoutExpired as exc:  # run() has killed the worker by now
        raise WorkerFailed(f"compile worker did not answer within {timeout_s:g} s and was stopped") from exc
    except OSError as exc:
        raise WorkerFailed(f"cannot start the compile worker {argv[0]!r}: {exc.strerror or exc}") from exc
    if done.returncode != 0:
        raise WorkerFailed(f"compile worker exited with status {done.returncode}: {_tail(done.stderr)}")
    try:
        return decode_answer(done.stdout)
    except (ValueError, RecursionError) as exc:
        raise WorkerFailed(f"compile worker gave an invalid answer: {exc}") from exc


def decode_answer(data: bytes) -> tuple[RuleSet, list[RuleError]]:
    """The worker's stdout -> rules and errors; raises ValueError (CompiledFormatError, JSON errors)."""
    if not data.strip():
        raise CompiledFormatError("answer", "empty")
    answer = expect_mapping(json.loads(data), "answer", ("format", "ruleset", "errors"))
    if type(answer["format"]) is not int or answer["format"] != FORMAT:
        raise CompiledFormatError("answer.format", f"expected {FORMAT}, got {answer['format']!r}")
    return RuleSet.from_compiled(answer["ruleset"]), load_errors(answer["errors"], "answer.errors")


def _fallback(cache: RuleCache | None, reason: str) -> tuple[RuleSet, list[RuleError]]:
    latest = cache.latest() if cache is not None else None
    if latest is None:
        return RuleSet(), [RuleError(COMPILER, COMPILER_FIELD, f"{reason}; no rules are active")]
    ruleset, _errors, path = latest
    return ruleset, [RuleError(COMPILER, COMPILER_FIELD, f"{reason}; keeping the last compiled rules "
                                                         f"({len(ruleset)} rules, cache entry {path.name})")]


def _tail(stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    if not lines:
        return "no message on stderr"
    return lines[-1][-_STDERR_TAIL:]
