"""Scan files for bulk customer data: the API the CLI (`scan --files`) and the service call.

A bad file never raises: it is skipped and the reason is returned in `ScanReport.skipped`. A file
that fails part-way is judged on what was read, and the finding says so (`scan.incomplete`).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from agent.exports.counter import PiiCounter
from agent.exports.files import PassingDigest, display_path, open_regular, sha256_of, walk_files
from agent.exports.formats import ReadContext, read_any
from agent.exports.limits import DEFAULT_LIMITS, Limits, Unreadable, safe_reason
from agent.exports.patterns import compile_waybills
from agent.exports.report import export_finding
from agent.exports.sampling import DEFAULT_SAMPLING, Sampler, SamplingPolicy
from agent.exports.severity import classify
from agent.exports.zip_guard import UnpackBudget
from agent.findings import Finding
from agent.policy import Thresholds
from agent.redact import redact
from agent.sensors.observations import ProcessInfo

log = logging.getLogger(__name__)

DEFAULT_THRESHOLDS = Thresholds()  # frozen, so one shared default is safe


@dataclass(frozen=True)
class ScanReport:
    findings: list[Finding]
    skipped: list[tuple[str, str]]
    scanned: int


@dataclass
class FileOutcome:
    """One file's result: at most one finding, and every reason something was not read."""

    finding: Finding | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    scanned: bool = False


def inspect_file(path: Path, *, thresholds: Thresholds = DEFAULT_THRESHOLDS, waybills: re.Pattern[str] | None = None,
                 removable: bool = False, process: ProcessInfo | None = None,
                 limits: Limits = DEFAULT_LIMITS, sampling: SamplingPolicy = DEFAULT_SAMPLING) -> FileOutcome:
    shown = display_path(path)
    outcome = FileOutcome()
    try:
        stream = open_regular(path)
    except Unreadable as exc:
        outcome.skipped.append((shown, exc.reason))
        return outcome
    except OSError as exc:
        outcome.skipped.append((shown, f"cannot open: {exc.strerror or exc}"))
        return outcome
    with stream:
        size = os.fstat(stream.fileno()).st_size
        counter = PiiCounter(waybills)
        sampler = Sampler(sampling, lambda: classify(counter.result(), thresholds) == "critical", counter)
        digest = PassingDigest()
        context = ReadContext(counter, limits, UnpackBudget(limits.max_unpacked_bytes), sampler=sampler,
                              digest=digest)
        incomplete = _read(stream, shown, size, context)
        outcome.scanned = True
        outcome.skipped.extend(context.skipped)
        result = counter.result()
        if incomplete and result.rows == 0:
            outcome.skipped.append((shown, incomplete))
            return outcome
        severity = classify(result, thresholds)
        if severity is None:
            if incomplete:
                outcome.skipped.append((shown, f"partly read, nothing found in the part read: {incomplete}"))
            return outcome
        sha256 = digest.hexdigest_of(size)
        if sha256 is None:
            try:
                sha256 = sha256_of(stream)
            except OSError as exc:
                sha256 = ""
                incomplete = incomplete or f"hash failed: {exc.strerror or exc}"
    outcome.finding = export_finding(severity=severity, path=shown, size=size, sha256=sha256, result=result,
                                     removable=removable, process=process, incomplete=incomplete)
    log.info("export finding %s on %s", severity, redact(shown))
    return outcome


def _read(stream: BinaryIO, shown: str, size: int, context: ReadContext) -> str | None:
    """Run the readers; the reason they stopped early, or None when the whole file was read."""
    try:
        read_any(stream, os.path.basename(shown), size, context)
    except Unreadable as exc:
        return exc.reason
    except OSError as exc:
        return f"read failed: {exc.strerror or exc}"
    except (MemoryError, RecursionError) as exc:
        return safe_reason("reader gave up", exc)
    except Exception as exc:  # a parser bug on a hostile file must not take the agent down
        log.warning("reader error on %s: %s", redact(shown), type(exc).__name__)
        return safe_reason("reader error", exc)
    return None


def scan_file(path: Path, *, thresholds: Thresholds = DEFAULT_THRESHOLDS, waybill_patterns: Sequence[str] | None = None,
              removable: bool = False, process: ProcessInfo | None = None,
              sampling: SamplingPolicy = DEFAULT_SAMPLING) -> Finding | None:
    """The finding for one file, or None (nothing found, or skipped: use scan_paths for reasons).

    Raises WaybillPatternError only for a bad pattern from policy, never for a bad file.
    """
    waybills = compile_waybills(waybill_patterns)
    outcome = inspect_file(path, thresholds=thresholds, waybills=waybills, removable=removable, process=process,
                           sampling=sampling)
    for where, reason in outcome.skipped:
        log.debug("skipped %s: %s", redact(where), redact(reason))
    return outcome.finding


def scan_paths(paths: Sequence[Path], *, thresholds: Thresholds = DEFAULT_THRESHOLDS,
               waybill_patterns: Sequence[str] | None = None,
               removable: Callable[[Path], bool] | None = None,
               sampling: SamplingPolicy = DEFAULT_SAMPLING) -> ScanReport:
    """Scan files and folders (recursively, symlinked folders not followed), each file once."""
    waybills = compile_waybills(waybill_patterns)
    findings: list[Finding] = []
    skipped: list[tuple[str, str]] = []
    scanned = 0
    seen: set[tuple[int, int]] = set()
    for path in _expand(paths, skipped):
        try:
            info = path.stat()
            identity = (info.st_dev, info.st_ino)
        except OSError:
            identity = (-1, len(seen))  # let inspect_file report why it cannot be opened
        if identity in seen:
            continue
        seen.add(identity)
        outcome = inspect_file(path, thresholds=thresholds, waybills=waybills,
                               removable=bool(removable and removable(path)), sampling=sampling)
        scanned += outcome.scanned
        skipped.extend(outcome.skipped)
        if outcome.finding is not None:
            findings.append(outcome.finding)
    return ScanReport(findings=findings, skipped=skipped, scanned=scanned)


def _expand(paths: Sequence[Path], skipped: list[tuple[str, str]]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from walk_files(path, skipped)
        elif path.exists() or path.is_symlink():
            yield path
        else:
            skipped.append((display_path(path), "no such file or folder"))
