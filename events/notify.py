"""Wake listeners after appends commit: ``NOTIFY flunq_events``, sent off the append path.

Readers that follow the log (relay, live feeds, subscriptions, gRPC Subscribe) LISTEN on the
channel ``flunq_events`` and then read up to the safe horizon; they also poll as a fallback, so a
lost notification only delays them.

Why not NOTIFY inside the append transaction: PostgreSQL serialises the commits of notifying
transactions on one lock held through the commit's WAL flush, which caps appends at one commit
per flush for the whole cluster (measured in docs/benchmarks.md). Here each process has one
notifier thread with its own connection: an append only sets a flag after it commits, and the
thread sends one NOTIFY for however many appends committed since its last one, at most one per
``NOTIFY_INTERVAL_MS``.
"""

from __future__ import annotations

import logging
import os
import threading
import time

import psycopg
from django.conf import settings
from psycopg import pq

from flunq_events.db import conninfo

CHANNEL = "flunq_events"
_NOTIFY = f"NOTIFY {CHANNEL}".encode()
log = logging.getLogger(__name__)


class CommitNotifier:
    IDLE_SECONDS = 30.0  # close the connection when nothing was appended for this long

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._closing = False
        # A forked child has no thread: it starts its own at its first poke. Checked at a fork,
        # not with ``os.getpid()`` at each poke (a system call per append).
        os.register_at_fork(after_in_child=self._forget_thread)

    def poke(self) -> None:
        """Say that an append committed; returns at once."""
        if self._pid is None:
            self._start()
        wake = self._wake
        if not wake.is_set():  # if set, the thread has yet to clear it: it notifies after this commit
            wake.set()

    def _forget_thread(self) -> None:
        self._pid, self._closing = None, False
        self._lock = threading.Lock()  # a thread of the parent may have held it

    def close(self) -> None:
        """Stop the thread and close its connection (tests drop their database afterwards)."""
        with self._lock:
            if self._pid != os.getpid():
                return
            self._closing = True
            self._wake.set()
            self._thread.join(5)
            self._pid, self._closing = None, False

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._wake = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(conninfo(),), name="flunq-notifier", daemon=True
            )
            self._thread.start()
            self._pid = os.getpid()

    def _run(self, dsn: str) -> None:
        connection: psycopg.Connection | None = None
        wake = self._wake
        # At most one NOTIFY per interval: appends that commit meanwhile share the next one. Each
        # NOTIFY costs this process a round trip and wakes every listener; under load one per
        # append cost the append path ~15% of its throughput (docs/benchmarks.md).
        interval = settings.NOTIFY_INTERVAL_MS / 1000
        while True:
            if not wake.wait(self.IDLE_SECONDS) and connection is not None:
                connection.close()
                connection = None
                continue
            wake.clear()
            if self._closing:
                if connection is not None:
                    connection.close()
                return
            try:
                if connection is None or connection.closed:
                    connection = psycopg.connect(dsn, autocommit=True)
                # Through libpq itself: half the CPU of ``connection.execute`` (docs/benchmarks.md,
                # finding 16), which this thread would take from the appending ones.
                result = connection.pgconn.exec_(_NOTIFY)
                if result.status != pq.ExecStatus.COMMAND_OK:
                    raise psycopg.errors.error_from_result(result, encoding=connection.info.encoding)
                time.sleep(interval)
            except psycopg.Error as exc:
                log.warning("could not notify listeners (they fall back to polling): %s", exc)
                if connection is not None:
                    connection.close()
                connection = None
                time.sleep(0.5)
                wake.set()  # try again: listeners may be waiting for this one


notifier = CommitNotifier()
