"""Full-jitter exponential backoff (AWS architecture blog), as a pure helper."""

from __future__ import annotations

import random


class Backoff:
    """Delay before the next attempt: uniform in [0, min(cap, base * 2**failures)]."""

    def __init__(self, base_s: float = 1.0, cap_s: float = 60.0, *, rng: random.Random | None = None) -> None:
        if base_s <= 0 or cap_s < base_s:
            raise ValueError(f"backoff needs 0 < base ({base_s}) <= cap ({cap_s})")
        self.base_s = base_s
        self.cap_s = cap_s
        self.failures = 0
        self._rng = rng or random.Random()

    def ceiling(self) -> float:
        return min(self.cap_s, self.base_s * 2 ** min(self.failures, 30))

    def next_delay(self) -> float:
        """Count one more failure and return how long to wait before trying again."""
        ceiling = self.ceiling()
        self.failures += 1
        # Never zero: a jitter draw of 0 would hammer HQ exactly when it is struggling.
        return max(self.base_s / 10, self._rng.uniform(0, ceiling))

    def reset(self) -> None:
        self.failures = 0
