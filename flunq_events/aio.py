"""Small asyncio helpers shared by the long-running loops (live tailer, gRPC subscriptions)."""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout: float) -> None:
    """Until ``event`` is set, or ``timeout`` seconds (then the timer sets it; callers clear the
    event before they read again, so that is the same as waking them).

    Not ``asyncio.wait_for(event.wait(), timeout)``: on Python 3.11 it loses a cancellation that
    arrives in the loop iteration where the event is set (it returns normally), and a loop
    around it then never stops — ``LogTailer.stop()`` hung that way.
    """
    timer = asyncio.get_running_loop().call_later(timeout, event.set)
    try:
        await event.wait()
    finally:
        timer.cancel()
