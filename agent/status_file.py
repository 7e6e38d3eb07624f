"""What the running service last knew, written atomically for `status`, `doctor` and the tray.

The file is advisory: a write the disk refuses (full, failing) is logged once and skipped, the data
stays in memory and the next update that fits writes all of it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STATUS_FILE = "status.json"


class StatusFile:
    def __init__(self, state_dir: Path) -> None:
        self._path = state_dir / STATUS_FILE
        self._lock = threading.Lock()
        self._data: dict[str, Any] = {}
        self._failing = False

    def update(self, **fields: Any) -> None:
        with self._lock:
            self._data.update(fields, pid=os.getpid(), updated_at=time.time())
            tmp = self._path.with_suffix(f".{os.getpid()}.tmp")
            try:
                tmp.write_text(json.dumps(self._data), "utf-8")
                os.replace(tmp, self._path)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    tmp.unlink(missing_ok=True)
                if not self._failing:
                    log.warning("%s: cannot write the status file (%s); keeping it in memory until a write "
                                "succeeds", self._path, exc)
                self._failing = True
                return
            if self._failing:
                log.warning("%s: status file written again", self._path)
            self._failing = False

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
