import errno
import logging
import os
from unittest import mock

import pytest

from agent.sequence import RESERVE_AHEAD_US, RequestSequence, SequenceError


def test_numbers_increase_within_a_process(tmp_path):
    seq = RequestSequence(tmp_path / "seq")
    values = [seq.next() for _ in range(1000)]
    assert values == sorted(set(values))


def test_restart_after_the_clock_jumped_back_continues_above_every_used_number(tmp_path):
    now = [10_000_000_000]
    first = RequestSequence(tmp_path / "seq", clock_us=lambda: now[0])
    used = [first.next() for _ in range(5)]
    now[0] -= 3_600 * 1_000_000  # the clock jumps back an hour, then the agent restarts
    second = RequestSequence(tmp_path / "seq", clock_us=lambda: now[0])
    assert second.next() > max(used)


def test_two_processes_of_one_device_both_follow_the_clock(tmp_path):
    now = [5_000_000]
    service = RequestSequence(tmp_path / "seq", clock_us=lambda: now[0])
    a = service.next()
    now[0] += 1000
    doctor = RequestSequence(tmp_path / "seq", clock_us=lambda: now[0])
    b = doctor.next()
    now[0] += 1000
    assert a < b < service.next()


def test_a_damaged_sequence_file_names_the_file(tmp_path):
    (tmp_path / "seq").write_text("twelve")
    with pytest.raises(SequenceError, match="seq: expected a whole number"):
        RequestSequence(tmp_path / "seq")


def test_skip_ahead_jumps_above_what_another_process_reserved(tmp_path):
    now = [5_000_000]
    service = RequestSequence(tmp_path / "seq", clock_us=lambda: now[0])
    service.next()
    now[0] -= 3_600 * 1_000_000
    doctor = RequestSequence(tmp_path / "seq", clock_us=lambda: now[0])
    ahead = doctor.next()
    service.skip_ahead()
    assert service.next() > ahead


def test_a_full_disk_does_not_stop_numbering_and_the_reservation_is_retried_later(tmp_path, caplog):
    now = [5_000_000]
    seq = RequestSequence(tmp_path / "seq", clock_us=lambda: now[0])
    before = seq.next()
    full = OSError(errno.ENOSPC, "No space left on device")
    values = []
    disk_full = mock.patch("agent.sequence.os.write", side_effect=full)
    with caplog.at_level(logging.WARNING, logger="agent.sequence"), disk_full:
        for _ in range(5):
            now[0] += 2 * RESERVE_AHEAD_US  # every call needs a new reservation
            values.append(seq.next())
    assert values == sorted(set(values)) and values[0] > before
    assert len([r for r in caplog.records if "No space left" in r.getMessage()]) == 1, \
        "one warning per failure streak, not one per request"
    assert sorted(os.listdir(tmp_path)) == ["seq"], "a failed reservation leaves no temporary file behind"
    assert int((tmp_path / "seq").read_text()) < values[-1]

    now[0] += 2 * RESERVE_AHEAD_US
    after = seq.next()
    assert after > values[-1]
    assert int((tmp_path / "seq").read_text()) > after, "the reservation is written once the disk has room"
