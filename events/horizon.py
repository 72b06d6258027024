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

import time

from django.db import connection


def current() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT flunq_horizon()")
        return cursor.fetchone()[0]


def wait_for(min_position: int, timeout: float) -> int:
    """Wait (bounded) until the horizon reaches ``min_position``; returns the horizon seen last.

    This is read-your-writes: an append returns its position, and a read with ``min_position``
    set to it sees the event.
    """
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        horizon = current()
        if horizon >= min_position or time.monotonic() >= deadline:
            return horizon
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.05)
