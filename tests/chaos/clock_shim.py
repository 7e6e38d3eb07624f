"""Run `terminal-guard` with a wall clock that jumps, the way a PC's clock does when it is set by hand
or corrected by NTP after a long sleep. Test-side only: the agent has no clock hook of its own.

    python tests/chaos/clock_shim.py --config agent.toml run

The wall clock (time.time, time.time_ns) starts TG_CHAOS_CLOCK_OFFSET_S seconds off (default 0);
SIGUSR1 moves it one hour ahead, SIGUSR2 one hour back. The monotonic clock is left alone, as a
real clock step leaves it. Everything else is the real agent in a real process.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

JUMP_S = 3600.0

_offset = float(os.environ.get("TG_CHAOS_CLOCK_OFFSET_S", "0") or 0)
_real_time = time.time
_real_time_ns = time.time_ns


def _time() -> float:
    return _real_time() + _offset


def _time_ns() -> int:
    return _real_time_ns() + int(_offset * 1e9)


def _jump(delta: float) -> None:
    global _offset
    _offset += delta


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _jump(JUMP_S if signum == signal.SIGUSR1 else -JUMP_S)


def main() -> int:
    # Patched before the agent is imported, so every `time.time()` it makes goes through the shim.
    time.time = _time
    time.time_ns = _time_ns
    signal.signal(signal.SIGUSR1, _on_signal)
    signal.signal(signal.SIGUSR2, _on_signal)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from agent.cli import main as agent_main

    return agent_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
