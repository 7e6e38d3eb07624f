import random

import pytest

from agent.backoff import Backoff


def test_delays_stay_under_a_ceiling_that_doubles_up_to_the_cap():
    backoff = Backoff(1.0, 60.0, rng=random.Random(7))
    ceilings = []
    for _ in range(10):
        ceiling = backoff.ceiling()
        delay = backoff.next_delay()
        assert 0 < delay <= ceiling
        ceilings.append(ceiling)
    assert ceilings[:7] == [1, 2, 4, 8, 16, 32, 60]
    assert max(ceilings) == 60


def test_full_jitter_spreads_delays_over_the_whole_range():
    delays = []
    for seed in range(200):
        backoff = Backoff(1.0, 60.0, rng=random.Random(seed))
        for _ in range(6):
            backoff.next_delay()
        delays.append(backoff.next_delay())  # ceiling 60
    assert min(delays) < 10 and max(delays) > 50


def test_reset_starts_again_from_the_base():
    backoff = Backoff(1.0, 60.0)
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.ceiling() == 1.0


def test_nonsense_bounds_are_refused():
    with pytest.raises(ValueError, match="base"):
        Backoff(10.0, 1.0)
