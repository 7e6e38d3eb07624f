"""One rule file's text -> compiled rules, or errors that name the file and the field.

pySigma parses and validates the rule (metadata, modifiers, values, condition), but its errors
do not say where they are and some malformed shapes make it raise plain Python exceptions. So
the document is first walked here, key by key, so that every problem comes back as
`file: detection.selection.CommandLine|expand: <why>`; only a document that passed the walk is
handed to `SigmaRule.from_dict` and compiled. Everything this engine cannot honour (other log
sources, aggregations and correlations, placeholders, field references, fields our sensors do not
produce) is rejected with its reason rather than silently matching nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePath
from typing import Any

import sigma.exceptions as sx
import yaml
from sigma.modifiers import modifier_mapping
from sigma.rule import SigmaDetectionItem, SigmaRule
from sigma.rule.base import SigmaYAMLLoader, check_alias_expansion

from agent.findings import CATEGORIES
from agent.rules.compiled import CompiledRule, build_rule
from agent.rules.compiler import compile_conditions
from agent.rules.errors import RuleError, RuleRejected
from agent.rules.fields import FIELDS_BY_CATEGORY, NETWORK_CONNECTION, PROCESS_CREATION, known_fields
from agent.rules.matchers import RegexError, compile_regex, regex_error_text

__all__ = ["CompiledRule", "load_text"]

MAX_RULE_BYTES = 1 << 20
PRODUCTS = ("windows", "linux", "macos")
CATEGORY_TAG = "category."  # our tag namespace: tg.category.<name>

SEVERITY_BY_LEVEL = {"informational": "low", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}
DEFAULT_CATEGORY = {PROCESS_CREATION: "scripting", NETWORK_CONNECTION: "remote_access"}
# For rules without a tg.category tag (e.g. SigmaHQ's): the ATT&CK technique says what it is.
ATTACK_CATEGORY = (
    ("t1219", "remote_access"),
    ("t1572", "tunnel"),
    ("t1090", "tunnel"),
    ("t1557", "interception"),
    ("t1040", "interception"),
    ("t1185", "automation"),
    ("t1119", "automation"),
    ("t1059", "scripting"),
)

_TIME_PARTS = ("minute", "hour", "day", "week", "month", "year")
UNSUPPORTED_MODIFIERS = {
    "expand": "placeholders (%name%) need environment-specific values, which this engine does not have",
    "fieldref": "comparing one field with another (fieldref) is not supported",
    **{part: "timestamp modifiers need an event-time field, which these events do not carry" for part in _TIME_PARTS},
}

_META_FIELDS: dict[type[Exception], str] = {
    sx.SigmaIdentifierError: "id",
    sx.SigmaNameError: "name",
    sx.SigmaTypeError: "name",  # the only type error of the metadata pass
    sx.SigmaTaxonomyError: "taxonomy",
    sx.SigmaRelatedError: "related",
    sx.SigmaLevelError: "level",
    sx.SigmaStatusError: "status",
    sx.SigmaTagError: "tags",
    sx.SigmaValueError: "tags",  # malformed tag (no namespace)
    sx.SigmaDateError: "date",
    sx.SigmaModifiedError: "modified",
    sx.SigmaFieldsError: "fields",
    sx.SigmaFalsePositivesError: "falsepositives",
    sx.SigmaAuthorError: "author",
    sx.SigmaDescriptionError: "description",
    sx.SigmaReferencesError: "references",
    sx.SigmaTitleError: "title",
    sx.SigmaScopeError: "scope",
    sx.SigmaLicenseError: "license",
}

Scalar = str | int | float | bool | None
_SCALARS = (str, int, float, bool, type(None))


class _Problems:
    """Problems found in one document, each with its field path."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, where: str, message: str) -> None:
        self.items.append((where, message))

    def __bool__(self) -> bool:
        return bool(self.items)


# ---------------------------------------------------------------- entry point


def load_text(name: str, text: str) -> tuple[list[CompiledRule], list[RuleError]]:
    """Compile every rule document in one file; bad documents become errors, good ones rules."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_RULE_BYTES:
        return [], [RuleError(name, "document", f"rule file larger than {MAX_RULE_BYTES} bytes")]
    try:
        documents = [d for d in yaml.load_all(text, Loader=SigmaYAMLLoader) if d is not None]
    except Exception as exc:  # the YAML boundary: anything the parser raises means "not YAML"
        return [], [RuleError(name, "yaml", _yaml_message(exc))]
    if not documents:
        return [], [RuleError(name, "document", "no rule in file (empty YAML)")]
    rules: list[CompiledRule] = []
    errors: list[RuleError] = []
    for index, document in enumerate(documents, start=1):
        label = name if len(documents) == 1 else f"{name}#{index}"
        rule, problems = _compile_guarded(label, document)
        if rule is not None:
            rules.append(rule)
        errors.extend(RuleError(label, where, message) for where, message in problems)
    return rules, errors


def _yaml_message(exc: Exception) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return f"not valid YAML: {where}{problem}".strip()


def _compile_guarded(label: str, document: Any) -> tuple[CompiledRule | None, list[tuple[str, str]]]:
    try:
        return _compile_document(label, document)
    except Exception as exc:  # a bad rule must never take the loader (and the agent) down
        return None, [("document", f"internal error while loading rule: {type(exc).__name__}: {exc}")]


def _compile_document(label: str, document: Any) -> tuple[CompiledRule | None, list[tuple[str, str]]]:
    problems = _Problems()
    if not isinstance(document, dict):
        return None, [("document", f"a rule must be a YAML mapping, got {_kind(document)}")]
    try:
        check_alias_expansion(document, sx.SigmaError)
    except sx.SigmaError as exc:
        return None, [("document", str(exc))]
    if _reject_kind(document, problems):
        return None, problems.items
    _check_metadata(document, problems)
    category = _check_logsource(document.get("logsource"), problems)
    _check_detection(document.get("detection"), category, problems)
    rule_category = _rule_category(document, category, problems)
    if problems or category is None or rule_category is None:
        return None, problems.items
    return _build(label, document, category, rule_category, problems), problems.items


# ---------------------------------------------------------------- document kind & metadata


def _reject_kind(document: dict[Any, Any], problems: _Problems) -> bool:
    if "correlation" in document:
        problems.add("correlation", "correlation rules (event counts, temporal, value counts) are not supported: "
                                    "the engine matches single events")
    elif "filter" in document:
        problems.add("filter", "Sigma meta filters are not supported; put exclusions into the rule's detection")
    elif "action" in document:
        problems.add("action", "legacy collection actions (global/reset/repeat) are not supported; "
                               "write one complete rule per YAML document")
    return bool(problems)


def _check_metadata(document: dict[Any, Any], problems: _Problems) -> None:
    rule_id = document.get("id")
    if rule_id is not None and not isinstance(rule_id, str):
        problems.add("id", f"expected a UUID string, got {_kind(rule_id)}")
        return  # pySigma's own id check cannot cope with non-strings
    _, errors = SigmaRule.from_dict_common_params(document, collect_errors=True)
    for error in errors:
        problems.add(_META_FIELDS.get(type(error), "document"), _message(error))
    status = document.get("status")
    if isinstance(status, str) and status.lower() == "unsupported":
        problems.add("status", "status 'unsupported' marks a rule that tools must not run")


def _rule_category(document: dict[Any, Any], logsource: str | None, problems: _Problems) -> str | None:
    tags = document.get("tags")
    tags = [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []
    ours = {t.split(".", 2)[2] for t in tags if t.lower().startswith("tg." + CATEGORY_TAG)}
    for name in sorted(ours - set(CATEGORIES)):
        problems.add("tags", f"unknown category tag 'tg.category.{name}'; expected one of {', '.join(CATEGORIES)}")
    valid = ours & set(CATEGORIES)
    if len(valid) > 1:
        problems.add("tags", f"more than one category tag: {', '.join(sorted(valid))}")
    if valid:
        return valid.pop()
    techniques = {t.lower().split(".")[1] for t in tags if t.lower().startswith("attack.t")}
    for technique, category in ATTACK_CATEGORY:
        if technique in techniques:
            return category
    return DEFAULT_CATEGORY.get(logsource or "", "scripting")


# ---------------------------------------------------------------- logsource


def _check_logsource(logsource: Any, problems: _Problems) -> str | None:
    supported = f"{PROCESS_CREATION} or {NETWORK_CONNECTION}"
    if logsource is None:
        problems.add("logsource", f"missing; expected a mapping with category {supported}")
        return None
    if not isinstance(logsource, dict):
        problems.add("logsource", f"expected a mapping, got {_kind(logsource)}")
        return None
    for key in ("category", "product", "service", "definition"):
        value = logsource.get(key)
        if value is not None and not isinstance(value, str):
            problems.add(f"logsource.{key}", f"expected a string, got {_kind(value)}")
            return None
    category, product, service = logsource.get("category"), logsource.get("product"), logsource.get("service")
    if service is not None:
        problems.add("logsource.service", f"{service!r} is not supported: rules must use the {supported} "
                                          "category with Sysmon-style fields")
    if product is not None and product.lower() not in PRODUCTS:
        problems.add("logsource.product", f"{product!r} is not supported; expected one of {', '.join(PRODUCTS)}")
    if category is None:
        problems.add("logsource.category", f"missing; supported categories: {supported}")
        return None
    if category not in FIELDS_BY_CATEGORY:
        problems.add("logsource.category", f"{category!r} is not supported; supported categories: {supported}")
        return None
    return str(category)


# ---------------------------------------------------------------- detection


def _check_detection(detection: Any, category: str | None, problems: _Problems) -> None:
    if detection is None:
        problems.add("detection", "missing; expected search identifiers and a condition")
        return
    if not isinstance(detection, dict):
        problems.add("detection", f"expected a mapping of search identifiers and a condition, got {_kind(detection)}")
        return
    _check_condition(detection.get("condition"), problems)
    searches = {k: v for k, v in detection.items() if k != "condition"}
    if not searches:
        problems.add("detection", "no search identifiers defined")
    for name, definition in searches.items():
        where = f"detection.{name}"
        if not isinstance(name, str):
            problems.add(where, f"search identifier must be a string, got {_kind(name)}")
        elif name == "timeframe":
            problems.add(where, "time windows belong to aggregations and correlations, which are not supported: "
                                "the engine matches single events")
        else:
            _check_definition(where, definition, category, problems)


def _check_condition(condition: Any, problems: _Problems) -> None:
    where = "detection.condition"
    if condition is None:
        problems.add(where, "missing")
        return
    conditions = condition if isinstance(condition, list) else [condition]
    if not conditions:
        problems.add(where, "empty list")
    for item in conditions:
        if not isinstance(item, str) or not item.strip():
            problems.add(where, f"expected a non-empty string, got {_kind(item)}")
        elif "|" in item:
            problems.add(where, "aggregations ('| count() ...', '| near ...') are not supported: "
                                "the engine matches single events")


def _check_definition(where: str, definition: Any, category: str | None, problems: _Problems) -> None:
    if isinstance(definition, dict):
        if not definition:
            problems.add(where, "empty search identifier")
        for key, value in definition.items():
            if key is not None and not isinstance(key, str):
                problems.add(f"{where}.{key!r}", f"field name must be a string, got {_kind(key)}")
            else:
                _check_item(f"{where}.{key}" if key else where, key, value, category, problems)
    elif isinstance(definition, list):
        if not definition:
            problems.add(where, "empty list")
        if all(isinstance(item, _SCALARS) for item in definition):
            _check_item(where, None, definition, category, problems)
            return
        for index, item in enumerate(definition):
            if isinstance(item, dict):
                _check_definition(f"{where}[{index}]", item, category, problems)
            elif isinstance(item, _SCALARS):
                _check_item(f"{where}[{index}]", None, item, category, problems)
            else:
                problems.add(f"{where}[{index}]", f"expected a value or a mapping of fields, got {_kind(item)}")
    elif isinstance(definition, _SCALARS):
        _check_item(where, None, definition, category, problems)
    else:
        problems.add(where, f"expected a mapping of fields, a list or a value, got {_kind(definition)}")


def _check_item(where: str, key: str | None, value: Any, category: str | None, problems: _Problems) -> None:
    before = len(problems.items)
    name, *modifiers = (key or "").split("|")
    for modifier in modifiers:
        if modifier not in modifier_mapping:
            known = ", ".join(sorted(m for m in modifier_mapping if m not in UNSUPPORTED_MODIFIERS))
            problems.add(where, f"unknown modifier {modifier!r}; known modifiers: {known}")
        elif modifier in UNSUPPORTED_MODIFIERS:
            problems.add(where, f"modifier {modifier!r} is not supported: {UNSUPPORTED_MODIFIERS[modifier]}")
    if name and category is not None and name not in FIELDS_BY_CATEGORY[category]:
        problems.add(where, f"field {name!r} is not provided for {category} events; "
                            f"known fields: {', '.join(known_fields(category))}")
    values = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not value:
        problems.add(where, "empty list of values")
    for item in values:
        if not isinstance(item, _SCALARS):
            problems.add(where, f"expected a string, number, boolean or null, got {_kind(item)}")
        elif "re" in modifiers:
            _check_regex(where, item, problems)
    if len(problems.items) == before:
        _try_item(where, lambda: SigmaDetectionItem.from_mapping(key or None, value), problems)


def _check_regex(where: str, pattern: object, problems: _Problems) -> None:
    """Validate with RE2 quietly here, so pySigma's own RE2 check does not log to stderr."""
    if not isinstance(pattern, str):
        problems.add(where, f"a regular expression must be a string, got {_kind(pattern)}")
        return
    try:
        compile_regex(pattern)
    except RegexError as exc:
        problems.add(where, f"invalid regular expression {pattern!r} (RE2 syntax): {regex_error_text(exc)}")


def _try_item(where: str, build: Callable[[], object], problems: _Problems) -> None:
    """Let pySigma apply the modifiers now, so a bad value is reported at its own key."""
    try:
        build()
    except sx.SigmaError as exc:
        problems.add(where, _message(exc))
    except Exception as exc:  # pySigma raises plain Python errors on some odd values
        problems.add(where, f"invalid value: {type(exc).__name__}: {exc}")


# ---------------------------------------------------------------- compile


def _build(label: str, document: dict[Any, Any], category: str, rule_category: str,
           problems: _Problems) -> CompiledRule | None:
    rule = SigmaRule.from_dict(document, collect_errors=True)
    for error in rule.errors:
        problems.add(_META_FIELDS.get(type(error), "detection"), _message(error))
    if problems:
        return None
    trees = []
    for condition in rule.detection.parsed_condition:
        try:
            trees.append(condition.parse())
        except sx.SigmaError as exc:
            problems.add("detection.condition", _message(exc))
        except RecursionError:
            problems.add("detection.condition", "condition is nested too deeply")
    if problems:
        return None
    try:
        node = compile_conditions(trees)
    except RuleRejected as exc:
        problems.add(exc.field, exc.message)
        return None
    level = str(rule.level) if rule.level is not None else "medium"
    key = str(rule.id) if rule.id is not None else rule.name or PurePath(label.split("#")[0]).stem
    return build_rule(key=key, title=rule.title, severity=SEVERITY_BY_LEVEL.get(level, "medium"),
                      category=rule_category, logsource=category, file=label, node=node)


def _message(error: Exception) -> str:
    return str(error.args[0]) if error.args else type(error).__name__


def _kind(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
             int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)
