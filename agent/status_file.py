"""What the running service last knew, written atomically for `status`, `doctor` and the tray."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

STATUS_FILE = "status.json"


class StatusFile:
    def __init__(self, state_dir: Path) -> None:
        self._path = state_dir / STATUS_FILE
        self._lock = threading.Lock()
        self._data: dict[str, Any] = {}

    def update(self, **fields: Any) -> None:
        with self._lock:
            self._data.update(fields, pid=os.getpid(), updated_at=time.time())
            tmp = self._path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self._data), "utf-8")
            os.replace(tmp, self._path)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._data)

    @staticmethod
    def read(state_dir: Path) -> dict[str, Any]:
        try:
            data = json.loads((state_dir / STATUS_FILE).read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}
