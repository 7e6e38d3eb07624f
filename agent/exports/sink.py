"""Where readers put rows: the counter, or anything else shaped like it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class RowSink(Protocol):
    def start_table(self) -> None: ...

    def add_row(self, cells: Sequence[str]) -> None: ...
