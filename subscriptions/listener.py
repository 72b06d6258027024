"""Wake a worker when something may be ready: LISTEN on PostgreSQL channels, with a timeout.

Appends notify ``flunq_events`` once committed (``events/notify.py``); subscription changes,
redrives and replays notify ``flunq_subscriptions``. Notifications can be lost (a reconnect, a
crash), so callers also wake on the timeout (polling fallback). Uses its own autocommit
connection, never Django's.
"""

from __future__ import annotations

import logging
import time

import psycopg

from flunq_events.db import connect

logger = logging.getLogger(__name__)
CHANNELS = ("flunq_events", "flunq_subscriptions")


class Listener:
    def __init__(self, channels: tuple[str, ...] = CHANNELS) -> None:
        self.channels = channels
        self.conn: psycopg.Connection | None = None

    def _connect(self) -> psycopg.Connection:
        conn = connect(autocommit=True)
        for channel in self.channels:
            conn.execute(f"LISTEN {channel}")
        return conn

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True when a notification arrived."""
        try:
            if self.conn is None or self.conn.closed:
                self.conn = self._connect()
            woke = False
            for _ in self.conn.notifies(timeout=timeout, stop_after=1):
                woke = True
            return woke
        except psycopg.Error as exc:
            # Fall back to polling until the database answers again.
            logger.warning("LISTEN connection failed (%s); polling", exc)
            self.close()
            time.sleep(min(timeout, 1.0))
            return False

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None
