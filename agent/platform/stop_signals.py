"""Run the agent's main function until a stop signal arrives, then let it finish by itself.

``main`` runs on a worker thread named ``agent-main`` while the process's main thread waits
in short joins. The short joins are the point: on Windows a blocking wait in the main thread
is not interrupted by Ctrl-C, so Python would never get to run the signal handler; waking up
twice a second lets it. Signals only set the stop event; ``main`` decides how to shut down
(flush the spool, close the uplink) and its return value is the exit code.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable
from types import FrameType

from agent.platform.base import ServiceMain

_JOIN_SLICE_S = 0.5


def run_until_stopped(
    main: ServiceMain,
    signums: Iterable[int],
    *,
    stop: threading.Event | None = None,
    finished: threading.Event | None = None,
) -> int:
    """Install handlers for ``signums`` that set ``stop``, run ``main(stop)``, restore handlers.

    ``finished`` is set once ``main`` has returned (or raised); a Windows console close handler
    waits on it so the process is not killed half way through a flush. An exception raised by
    ``main`` is re-raised here, in the calling thread.
    """
    stop = stop if stop is not None else threading.Event()
    finished = finished if finished is not None else threading.Event()
    outcome: dict[str, int | BaseException] = {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # No logging here: the handler can run while this thread holds a logging lock.
        stop.set()

    def body() -> None:
        try:
            outcome["code"] = main(stop)
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc
        finally:
            finished.set()

    previous = {signum: signal.signal(signum, on_signal) for signum in signums}
    try:
        worker = threading.Thread(target=body, name="agent-main")
        worker.start()
        while worker.is_alive():
            worker.join(_JOIN_SLICE_S)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    error = outcome.get("error")
    if isinstance(error, BaseException):
        raise error
    code = outcome.get("code")
    return code if isinstance(code, int) else 0
