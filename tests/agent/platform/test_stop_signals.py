from __future__ import annotations

import os
import signal
import threading

import pytest

from agent.platform.stop_signals import run_until_stopped


def test_signal_sets_stop_and_main_decides_the_exit_code() -> None:
    def main(stop: threading.Event) -> int:
        os.kill(os.getpid(), signal.SIGINT)
        return 0 if stop.wait(10) else 99

    assert run_until_stopped(main, [signal.SIGINT]) == 0


def test_handlers_are_restored_afterwards() -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    run_until_stopped(lambda stop: 0, [signal.SIGINT, signal.SIGTERM])
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_exception_in_main_reaches_the_caller_and_finished_is_set() -> None:
    finished = threading.Event()

    def main(stop: threading.Event) -> int:
        raise ValueError("sensor exploded")

    with pytest.raises(ValueError, match="sensor exploded"):
        run_until_stopped(main, [signal.SIGTERM], finished=finished)
    assert finished.is_set()


def test_given_events_are_the_ones_main_sees() -> None:
    stop = threading.Event()
    finished = threading.Event()
    stop.set()
    seen: list[bool] = []

    def main(event: threading.Event) -> int:
        seen.append(event is stop and event.is_set() and not finished.is_set())
        return 4

    assert run_until_stopped(main, [], stop=stop, finished=finished) == 4
    assert seen == [True]
    assert finished.is_set()
