"""The body deadline: its own expiry becomes TimeoutError, anyone else's cancellation stays a
cancellation, and a deadline that was met leaves the task alone afterwards."""

from __future__ import annotations

import asyncio

import pytest

from hq.api.deadline import Deadline


def test_an_await_past_the_deadline_raises_timeout_error() -> None:
    async def main() -> Deadline:
        deadline = Deadline(0.05)
        with pytest.raises(TimeoutError), deadline:
            await asyncio.Event().wait()
        return deadline

    assert asyncio.run(main()).expired


def test_a_deadline_met_leaves_the_task_alone_afterwards() -> None:
    async def main() -> bool:
        with Deadline(0.05) as deadline:
            await asyncio.sleep(0)
        await asyncio.sleep(0.15)  # past the deadline: a stray timer would cancel this sleep
        task = asyncio.current_task()
        assert task is not None
        return deadline.expired or task.cancelling() > 0

    assert asyncio.run(main()) is False


def test_a_cancellation_from_elsewhere_is_not_turned_into_a_timeout() -> None:
    async def body() -> None:
        with Deadline(30):
            await asyncio.Event().wait()

    async def main() -> None:
        task = asyncio.create_task(body())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_a_cancellation_that_races_the_deadline_still_cancels() -> None:
    """Both land before the task runs again: the outside request must win (as with asyncio.timeout)."""

    async def body(deadline: Deadline) -> None:
        with deadline:
            await asyncio.Event().wait()

    async def main() -> None:
        deadline = Deadline(30)
        task = asyncio.create_task(body(deadline))
        await asyncio.sleep(0.01)
        deadline._expire()  # the deadline's timer firing, and in the same loop step:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert deadline.expired

    asyncio.run(main())
