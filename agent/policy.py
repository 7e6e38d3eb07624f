"""The policy HQ signs and the agent obeys: parsing, signature check and the last good copy.

A policy document is ``{"version": int, "issued_at": str, "body": {...}}`` signed over its
canonical JSON by the HQ policy key that the agent pinned at enrollment. Anything malformed or
badly signed is refused with a reason, and the agent keeps the last good policy.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.binding.policy import BindingPolicy, SharingPolicy, parse_binding, parse_sharing
from agent.detection.actions import ResponsePolicy, parse_responses
from agent.signing import SignatureError, load_public_key, verify_document

MAX_POLICY_BYTES = 4 * 1024 * 1024


class PolicyError(ValueError):
    """A policy that is malformed, badly signed or older than the one in force."""


@dataclass(frozen=True)
class Thresholds:
    export_high_mobiles: int = 50
    export_high_rows: int = 20
    export_critical: int = 1000


@dataclass(frozen=True)
class PolicyBody:
    protected_hosts: tuple[str, ...] = ()
    approved_programs: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)
    binding: BindingPolicy = field(default_factory=BindingPolicy)
    sharing: SharingPolicy = field(default_factory=SharingPolicy)
    responses: ResponsePolicy = field(default_factory=ResponsePolicy)


@dataclass(frozen=True)
class Policy:
    version: int
    issued_at: str
    body: PolicyBody
    document: dict[str, Any]
    signature: str


DEFAULT_BODY = PolicyBody()


def _expect(value: Any, kind: type | tuple[type, ...], where: str, expected: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, kind):
        raise PolicyError(f"{where}: expected {expected}, got {type(value).__name__} {value!r:.60}")
    return value


def _string_list(value: Any, where: str) -> tuple[str, ...]:
    items = _expect(value, list, where, "a list of strings")
    for index, item in enumerate(items):
        _expect(item, str, f"{where}[{index}]", "a string")
    return tuple(items)


def _positive_int(value: Any, where: str) -> int:
    number = _expect(value, int, where, "a positive integer")
    if number <= 0:
        raise PolicyError(f"{where}: expected a positive integer, got {number}")
    return int(number)


def parse_thresholds(raw: Any) -> Thresholds:
    data = _expect(raw, dict, "body.thresholds", "an object")
    known = {"export_high_mobiles", "export_high_rows", "export_critical"}
    for key in data:
        if key not in known:
            raise PolicyError(f"body.thresholds.{key}: unknown key; expected one of {sorted(known)}")
    return Thresholds(**{key: _positive_int(value, f"body.thresholds.{key}") for key, value in data.items()})


def _located(parse: Any, value: Any) -> Any:
    try:
        return parse(value)
    except ValueError as exc:
        raise PolicyError(str(exc)) from None


def parse_policy_body(raw: Any) -> PolicyBody:
    """Validate a policy body; every error names the field and what was expected."""
    data = _expect(raw, dict, "body", "an object")
    parsers = {
        "protected_hosts": lambda v: _string_list(v, "body.protected_hosts"),
        "approved_programs": lambda v: _string_list(v, "body.approved_programs"),
        "rules": lambda v: _string_list(v, "body.rules"),
        "thresholds": parse_thresholds,
        "binding": lambda v: _located(parse_binding, v),
        "sharing": lambda v: _located(parse_sharing, v),
        "responses": lambda v: _located(parse_responses, v),
    }
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in parsers:
            raise PolicyError(f"body.{key}: unknown key; expected one of {sorted(parsers)}")
        values[key] = parsers[key](value)
    return PolicyBody(**values)


def parse_policy(document: Any, signature: Any, public_key: str) -> Policy:
    """Check the signature first (nothing unsigned is even parsed), then the shape."""
    doc = _expect(document, dict, "policy", "an object")
    sig = _expect(signature, str, "signature", "a base64url string")
    try:
        verify_document(load_public_key(public_key), doc, sig)
    except SignatureError as exc:
        raise PolicyError(f"signature: {exc}") from exc
    for key in doc:
        if key not in {"version", "issued_at", "body"}:
            raise PolicyError(f"policy.{key}: unknown key; expected version, issued_at, body")
    version = _positive_int(doc.get("version"), "policy.version")
    issued_at = _expect(doc.get("issued_at"), str, "policy.issued_at", "an ISO 8601 time")
    body = parse_policy_body(doc.get("body"))
    return Policy(version=version, issued_at=issued_at, body=body, document=doc, signature=sig)


class PolicyStore:
    """The last good signed policy on disk, re-verified whenever it is read back."""

    def __init__(self, path: Path, public_key: str) -> None:
        self._path = path
        self._public_key = public_key

    def load(self) -> Policy | None:
        if not self._path.exists():
            return None
        try:
            saved = json.loads(self._path.read_text("utf-8"))
            return parse_policy(saved.get("policy"), saved.get("signature"), self._public_key)
        except (OSError, ValueError, AttributeError) as exc:
            raise PolicyError(f"{self._path}: stored policy unreadable: {exc}") from exc

    def offer(self, document: Any, signature: Any, current: Policy | None) -> Policy:
        """Accept a policy from HQ if it verifies and is not older than the current one."""
        policy = parse_policy(document, signature, self._public_key)
        if current is not None and policy.version < current.version:
            raise PolicyError(f"policy.version: {policy.version} is older than the policy in force ({current.version})")
        self._write({"policy": policy.document, "signature": policy.signature})
        return policy

    def _write(self, data: dict[str, Any]) -> None:
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
        os.replace(tmp, self._path)


class CurrentPolicy:
    """The policy in force, shared by the uplink (writer) and detection (readers)."""

    def __init__(self, store: PolicyStore | None, initial: Policy | None = None) -> None:
        self._store = store
        self._policy = initial
        self._lock = threading.Lock()

    @property
    def policy(self) -> Policy | None:
        with self._lock:
            return self._policy

    @property
    def version(self) -> int | None:
        policy = self.policy
        return policy.version if policy else None

    @property
    def body(self) -> PolicyBody:
        policy = self.policy
        return policy.body if policy else DEFAULT_BODY

    def attach(self, store: PolicyStore) -> None:
        """Pin the HQ policy key of a (new) enrollment; keep its last good policy if one verifies."""
        stored = store.load()
        with self._lock:
            self._store = store
            if stored is not None and (self._policy is None or stored.version >= self._policy.version):
                self._policy = stored

    def offer(self, document: Any, signature: Any) -> Policy:
        """Adopt a policy from HQ; raises PolicyError and keeps the current one if it is refused."""
        if self._store is None:
            raise PolicyError("no pinned HQ policy key: enroll first")
        with self._lock:
            self._policy = self._store.offer(document, signature, self._policy)
            return self._policy
