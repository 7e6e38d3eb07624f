"""A located rule error: which file, which field, what was expected (STYLE.md #2)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuleError:
    """One reason a rule file (or one rule in it) was rejected.

    `field` is a dotted path into the rule document, e.g. `logsource.category`,
    `detection.selection.CommandLine|expand` or `detection.condition`; the pseudo-fields
    `path` (the file could not be read), `yaml` (the text is not YAML) and `document`
    (the YAML is not a rule mapping) cover errors that have no field of their own; `compiler`
    (file "rule compiler") says that the compile worker failed (isolated.py).
    """

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}"


class RuleRejected(Exception):
    """Raised inside the loader to abandon one rule; carries the located error."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
