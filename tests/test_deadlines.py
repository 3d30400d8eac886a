"""`router.deadlines`: one timer expires many waits of the same length, failing the future a
wait is on or cancelling its task as `asyncio.timeout` would, and never an external cancel."""

from __future__ import annotations

import asyncio

import pytest

from router.deadlines import Deadlines

RESOLUTION = 0.01


async def test_a_future_never_answered_fails_with_timeout_error() -> None:
    deadlines = Deadlines(RESOLUTION)
    loop = asyncio.get_running_loop()
    started = loop.time()
    wait = deadlines.start(0.05)
    wait.future = future = loop.create_future()
    with pytest.raises(TimeoutError):
        await future
    wait.end()
    assert 0.05 <= loop.time() - started < 0.05 + 10 * RESOLUTION
    assert wait.expired


async def test_a_task_not_yet_on_a_future_is_cancelled_and_told_it_timed_out() -> None:
    deadlines = Deadlines(RESOLUTION)
    wait = deadlines.start(0.03)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.sleep(5)
    assert wait.timed_out()
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    wait.end()


async def test_an_external_cancel_is_not_a_time_out() -> None:
    deadlines = Deadlines(RESOLUTION)
    outcome: list[str] = []

    async def waiter() -> None:
        wait = deadlines.start(0.02)
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            outcome.append("timed out" if wait.timed_out() else "cancelled")
            raise
        finally:
            wait.end()

    task = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    task.cancel()  # before the deadline: a plain cancel
    with pytest.raises(asyncio.CancelledError):
        await task
    assert outcome == ["cancelled"]


async def test_ended_waits_never_expire_and_the_timer_stops() -> None:
    deadlines = Deadlines(RESOLUTION)
    loop = asyncio.get_running_loop()
    futures = []
    for _ in range(100):
        wait = deadlines.start(0.02)
        wait.future = loop.create_future()
        futures.append(wait.future)
        wait.end()
    await asyncio.sleep(0.02 + 5 * RESOLUTION)
    assert not any(f.done() for f in futures)
    assert len(deadlines) == 0
    assert deadlines._timer is None


async def test_waits_of_different_lengths_expire_each_on_time() -> None:
    deadlines = Deadlines(RESOLUTION)
    loop = asyncio.get_running_loop()
    long = deadlines.start(5.0)
    long.future = loop.create_future()
    short = deadlines.start(0.02)
    short.future = loop.create_future()
    with pytest.raises(TimeoutError):
        await short.future
    assert not long.future.done()  # a longer wait ahead in time does not hold a shorter one
    long.end()
    short.end()
    deadlines.close()
