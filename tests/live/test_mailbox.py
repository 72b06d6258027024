"""A client's mailbox: its wait ends with a batch, a wake-up or the heartbeat timeout."""

from __future__ import annotations

import asyncio
import time

from live.tailer import Batch, Mailbox


def drain(mailbox: Mailbox) -> int:
    """Take every batch, as a feed does before it waits again."""
    taken = 0
    while mailbox.take() is not None:
        taken += 1
    return taken


async def waited(mailbox: Mailbox, timeout: float | None) -> float:
    began = time.monotonic()
    await mailbox.wait(timeout)
    return time.monotonic() - began


async def test_a_wait_ends_at_its_timeout_or_at_the_next_batch_whichever_comes_first():
    mailbox = Mailbox(limit=10)
    assert 0.04 <= await waited(mailbox, 0.05) < 1
    assert mailbox.take() is None

    asyncio.get_running_loop().call_later(0.01, mailbox.put, Batch(0, 1, ()))
    assert await waited(mailbox, 10) < 1
    assert drain(mailbox) == 1


async def test_each_wait_gets_its_own_timeout_though_one_timer_serves_them():
    mailbox = Mailbox(limit=10)
    # A long wait cut short by a batch leaves its timer armed far ahead ...
    asyncio.get_running_loop().call_later(0.01, mailbox.put, Batch(0, 1, ()))
    await mailbox.wait(30)
    assert drain(mailbox) == 1
    # ... a shorter wait still ends on time, and a longer one is not woken early by a stale timer.
    assert 0.04 <= await waited(mailbox, 0.05) < 1
    for _ in range(3):
        asyncio.get_running_loop().call_later(0.01, mailbox.put, Batch(0, 1, ()))
        await mailbox.wait(0.05)
        drain(mailbox)
    assert await waited(mailbox, 0.2) >= 0.19
    assert drain(mailbox) == 0
