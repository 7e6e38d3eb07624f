"""Stored events as ECS-shaped documents (Elastic Common Schema 8.x field names) for a SIEM.

Findings already carry flattened ECS keys ("process.name", "file.hash.sha256"); those are nested
into ECS objects. Everything else of the body stays under ``terminal_guard``, so nothing the
agent reported is lost and nothing lands in an ECS field with a different meaning.
"""

from __future__ import annotations

from typing import Any

from hq.timefmt import at_utc, iso

ECS_VERSION = "8.11.0"
# Body keys under these roots are ECS fields; any other key is ours. ("host" is not: HQ names the host.)
ECS_ROOTS = ("process", "file", "user", "source", "destination", "network", "url", "registry", "dns")
SEVERITY_NAMES = ("low", "medium", "high", "critical")
# ECS event.category per finding category (https://www.elastic.co/guide/en/ecs/current/ecs-allowed-values-event-category.html).
CATEGORY = {
    "automation": ["process"], "scripting": ["process"], "interception": ["process", "network"],
    "remote_access": ["process", "network"], "tunnel": ["network"], "export": ["file"], "sharing": ["iam"],
}


def _iso(ts: float) -> str | None:
    """ECS date text; None for a time no date holds (a device may report any `created`)."""
    return iso(ts, timespec="milliseconds") if at_utc(ts) is not None else None


def _put(target: dict[str, Any], dotted: str, value: Any) -> bool:
    """Set a.b.c = value inside ``target``; False when a parent is already a plain value."""
    parts = dotted.split(".")
    node = target
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return False
        node = child
    if isinstance(node.get(parts[-1]), dict):
        return False
    node[parts[-1]] = value
    return True


def _is_alert(kind: str) -> bool:
    return kind == "finding" or kind == "policy.rejected" or (kind.startswith("alert.") and kind != "alert.answered")


def to_ecs(event: dict[str, Any], *, outlet_id: str | None = None, hostname: str | None = None) -> dict[str, Any]:
    """``event``: pk, event_id, device_id, kind, priority, created, received_at, origin, body."""
    body = event["body"] if isinstance(event["body"], dict) else {"value": event["body"]}
    kind = str(event["kind"])
    priority = min(max(int(event["priority"]), 0), 3)
    category = body.get("category") if kind == "finding" else None
    created = _iso(float(event["created"]))
    ingested = _iso(float(event["received_at"]))
    doc: dict[str, Any] = {
        "@timestamp": created or ingested,
        "ecs": {"version": ECS_VERSION},
        "event": {
            "id": str(event["event_id"]),
            "kind": "alert" if _is_alert(kind) else "event",
            "action": kind,
            "category": CATEGORY.get(category, ["host"]) if isinstance(category, str) else ["host"],
            "severity": priority,
            "created": created,
            "ingested": ingested,
            "module": "terminal_guard",
            "dataset": f"terminal_guard.{event['origin']}",
            "provider": "hq" if event["origin"] == "hq" else "agent",
            "sequence": int(event["pk"]),
        },
        "observer": {"vendor": "Terminal Guard", "product": "terminal-guard-hq", "type": "edr"},
        "host": {"id": str(event["device_id"])},
        "labels": {"outlet_id": outlet_id} if outlet_id else {},
        "terminal_guard": {"priority": priority, "severity": SEVERITY_NAMES[priority], "origin": event["origin"]},
    }
    if created is None:
        # A date field holding something else would make the SIEM refuse the whole document.
        del doc["event"]["created"]
        doc["terminal_guard"]["created"] = event["created"]
    if hostname:
        doc["host"]["hostname"] = hostname
    if kind == "finding":
        doc["rule"] = {k: v for k, v in (("name", body.get("rule")), ("category", category)) if v is not None}
        doc["message"] = str(body.get("title") or body.get("rule") or kind)
    else:
        doc["message"] = kind
    extra: dict[str, Any] = {}
    for key, value in body.items():
        if key.split(".", 1)[0] in ECS_ROOTS and "." in key and value is not None and _put(doc, key, value):
            continue
        if key not in ("@timestamp", "rule", "title", "category"):
            extra[key] = value
    if extra:
        doc["terminal_guard"]["body"] = extra
    return doc
