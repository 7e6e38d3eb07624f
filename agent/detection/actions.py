"""What the agent does about a finding, per rule, from policy's `responses` section.

Every finding is spooled for HQ (`alert`); on top of that a rule may ask for a tray notice
(`notify`), an answer from staff (`require_ack`), the end of the process tree (`terminate`) or
the suspension of the staff member's bound sessions at HQ (`suspend_binding`).

Policy shape::

    "responses": {
        "allow_terminate": false,
        "rules": {"<rule id>": ["require_ack", "suspend_binding"], "category:export": "notify",
                  "tg.*": "alert"}
    }

A rule id beats a category (`category:<name>`), which beats a pattern; a longer pattern beats a
shorter one (the built-in Sigma rules have UUIDs for ids, so categories are the practical handle).
A rule policy does not name keeps the severity default (high and critical → `require_ack`,
medium → `notify`, low → `alert`): the issue asked for `alert` as the default, but outlet staff
then never see what they did; `"*": "alert"` gives that behaviour to an HQ that wants it.
`terminate` only acts when `allow_terminate` is true, because killing a program on a shop counter
PC is a decision HQ must take on purpose.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

ACTIONS = ("alert", "notify", "require_ack", "terminate", "suspend_binding")
MAX_RULE_KEYS = 2000
MAX_KEY_CHARS = 200


def severity_default(severity: str) -> tuple[str, ...]:
    if severity in ("high", "critical"):
        return ("require_ack",)
    if severity == "medium":
        return ("notify",)
    return ("alert",)


@dataclass(frozen=True)
class ResponsePolicy:
    allow_terminate: bool = False
    rules: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def actions_for(self, rule: str, severity: str, category: str | None = None) -> tuple[str, ...]:
        """The actions for one finding, `alert` always first; `terminate` only when allowed."""
        chosen = (self.rules.get(rule) or (self.rules.get(f"category:{category}") if category else None)
                  or self._by_pattern(rule) or severity_default(severity))
        actions = ["alert", *(a for a in chosen if a != "alert")]
        if not self.allow_terminate and "terminate" in actions:
            actions.remove("terminate")
        if "require_ack" in actions and "notify" in actions:
            actions.remove("notify")  # the answer dialog already tells staff
        return tuple(actions)

    def _by_pattern(self, rule: str) -> tuple[str, ...] | None:
        patterns = [key for key in self.rules
                    if _is_pattern(key) and not key.startswith("category:") and fnmatch.fnmatchcase(rule, key)]
        return self.rules[max(patterns, key=len)] if patterns else None


def _is_pattern(key: str) -> bool:
    return any(char in key for char in "*?[")


def _actions(value: Any, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValueError(f"{where}: expected an action or a non-empty list of actions {list(ACTIONS)}, "
                         f"got {value!r:.60}")
    for index, item in enumerate(items):
        if item not in ACTIONS:
            raise ValueError(f"{where}[{index}]: expected one of {list(ACTIONS)}, got {item!r:.60}")
    return tuple(dict.fromkeys(items))


def parse_responses(raw: Any) -> ResponsePolicy:
    """Validate `body.responses`; a ValueError names the field and what was expected."""
    where = "body.responses"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected an object, got {type(raw).__name__}")
    for key in raw:
        if key not in ("allow_terminate", "rules"):
            raise ValueError(f"{where}.{key}: unknown key; expected allow_terminate, rules")
    allow = raw.get("allow_terminate", False)
    if not isinstance(allow, bool):
        raise ValueError(f"{where}.allow_terminate: expected true or false, got {allow!r:.60}")
    rules = raw.get("rules", {})
    if not isinstance(rules, dict):
        raise ValueError(f"{where}.rules: expected an object of rule id → actions, got {type(rules).__name__}")
    if len(rules) > MAX_RULE_KEYS:
        raise ValueError(f"{where}.rules: at most {MAX_RULE_KEYS} entries, got {len(rules)}")
    parsed = {}
    for key, value in rules.items():
        if not key or len(key) > MAX_KEY_CHARS:
            raise ValueError(f"{where}.rules: a rule id or pattern of 1 to {MAX_KEY_CHARS} characters, "
                             f"got {key!r:.60}")
        parsed[key] = _actions(value, f"{where}.rules.{key}")
    return ResponsePolicy(allow_terminate=allow, rules=parsed)
