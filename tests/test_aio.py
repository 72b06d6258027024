"""flunq_events.aio.wait_event: a timed wait on an event that never loses a cancellation."""

from __future__ import annotations

import asyncio
import time

import pytest

from flunq_events.aio import wait_event


async def test_it_returns_when_the_event_is_set_or_the_time_is_up():
    event = asyncio.Event()
    asyncio.get_running_loop().call_later(0.01, event.set)
    began = time.monotonic()
    await wait_event(event, 5)
    assert time.monotonic() - began < 1

    event.clear()
    began = time.monotonic()
    await wait_event(event, 0.05)
    assert time.monotonic() - began >= 0.04


async def test_a_cancellation_in_the_iteration_that_sets_the_event_is_kept():
    """What asyncio.wait_for on Python 3.11 loses: a loop around the wait would never stop."""

    async def loop(event: asyncio.Event) -> None:
        while True:
            event.clear()
            await wait_event(event, 1.0)

    for _ in range(50):
        event = asyncio.Event()
        task = asyncio.create_task(loop(event))
        await asyncio.sleep(0)
        event.set()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 2)
