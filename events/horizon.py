"""The safe horizon: the global position up to which the log can be read without skipping.

Positions come from a sequence, so a transaction may commit position 11 while position 10 is still
in flight; a reader that took 11 and moved on would never see 10. Appends draw their positions
together with their transaction id (``flunq_draw_positions`` in ``events/sql/log.sql``), so
positions follow xids, and every transaction with an xid below the current snapshot's ``xmin`` has
ended. The horizon is the highest position written by such a transaction: nothing at or below it
can still appear. Every global reader (REST, websockets, relay, subscriptions, gRPC) reads only up
to it.

The horizon is cluster-wide: any open transaction that holds an xid holds it back, including the
reader's own. Compute it outside a writing transaction (autocommit reads are).
"""

from __future__ import annotations

import asyncio
import time

from django.db import connection


def current() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT flunq_horizon()")
        return cursor.fetchone()[0]


def log_end() -> int:
    """The highest position drawn so far (0 before the first): the end of the log, events still in
    flight included. A start or rewind past it would skip what is appended until the log got
    there, so those stop here; one at or below it means what it says, even above the horizon."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM flunq_position_seq")
        return cursor.fetchone()[0]


def wait_for(min_position: int, timeout: float) -> int:
    """Wait (bounded) until the horizon reaches ``min_position``; returns the horizon seen last.

    This is read-your-writes: an append returns its position, and a read with ``min_position``
    set to it sees the event.
    """
    deadline = time.monotonic() + timeout
    for pause in _pauses(deadline):
        horizon = current()
        if horizon >= min_position or pause is None:
            return horizon
        time.sleep(pause)
    raise AssertionError("unreachable")


async def wait_for_async(min_position: int, timeout: float, current_async) -> int:
    """``wait_for`` for a coroutine: ``await current_async()`` reads the horizon (in a database
    thread), and the pauses between reads hold no thread. Cancelling the caller stops it."""
    deadline = time.monotonic() + timeout
    for pause in _pauses(deadline):
        horizon = await current_async()
        if horizon >= min_position or pause is None:
            return horizon
        await asyncio.sleep(pause)
    raise AssertionError("unreachable")


def _pauses(deadline: float):
    """The pause before each next look (2 ms, doubling up to 50 ms); None once past ``deadline``."""
    delay = 0.002
    while True:
        left = deadline - time.monotonic()
        yield None if left <= 0 else min(delay, left)
        delay = min(delay * 2, 0.05)
