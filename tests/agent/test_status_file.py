"""The status file: advisory, so a full disk costs a write, never the worker that made the update."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path
from unittest import mock

import pytest

from agent.status_file import StatusFile


def full_disk_write_text(self: Path, *args: object, **kwargs: object) -> None:
    """Like a real full disk: the temporary file gets created, then the write fails."""
    self.touch()
    raise OSError(errno.ENOSPC, "No space left on device", str(self))


def test_an_update_the_disk_refuses_stays_in_memory_and_is_written_by_the_next_one(tmp_path: Path) -> None:
    status = StatusFile(tmp_path)
    status.update(hq_reachable=True)

    with mock.patch.object(Path, "write_text", full_disk_write_text):
        status.update(hq_reachable=False, spool_depth=7)

    assert status.snapshot()["hq_reachable"] is False
    assert StatusFile.read(tmp_path)["hq_reachable"] is True, "the last good file is left in place"
    assert sorted(os.listdir(tmp_path)) == ["status.json"], "no temporary file is left behind"

    status.update(exports_mode="inotify")
    written = StatusFile.read(tmp_path)
    assert (written["hq_reachable"], written["spool_depth"], written["exports_mode"]) == (False, 7, "inotify")


def test_a_full_disk_is_logged_once_per_streak_not_once_per_update(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    status = StatusFile(tmp_path)
    with caplog.at_level(logging.WARNING, logger="agent.status_file"), \
            mock.patch.object(Path, "write_text", full_disk_write_text):
        for n in range(10):
            status.update(heartbeats=n)

    failures = [r for r in caplog.records if "No space left" in r.getMessage()]
    assert len(failures) == 1
    assert all(r.exc_info is None for r in caplog.records), "a warning, not a traceback"
