"""The relay loop: every committed event, in order, from the log to one broker.

One ``Relay`` serves one sink (a backend alias). Its unit of work is ``step()``:

1. read the events after the checkpoint, up to the safe horizon (``relay.messages.read_batch``);
2. dead-letter the ones over ``RELAY_MAX_MESSAGE_BYTES``, publish the rest and wait for the broker's
   acks (``Backend.publish``); an event the broker refuses for good is dead-lettered too;
3. advance the checkpoint to the batch's last position, with a compare-and-set on
   (position, epoch) so a rewind made meanwhile wins.

A broker error (``BrokerUnavailable``) leaves the checkpoint where it is: nothing is skipped, the
batch is sent again after a back-off (exponential, full jitter), possibly twice — at least once.

``run()`` adds the rest: only the holder of the sink's PostgreSQL advisory lock publishes (others
wait as standbys and retry every ``RELAY_STANDBY_POLL_SECONDS``; the lock dies with its session,
so a standby takes over within about that time when the active relay dies). Between batches it
sleeps on ``LISTEN flunq_events`` (appends notify at commit), waking at least every
``RELAY_POLL_SECONDS`` in case a notification was lost. Setting ``stop`` (SIGTERM) ends the loop
after the batch in flight.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import psycopg
from django.conf import settings
from django.db import DatabaseError, InterfaceError, connection
from django.utils import timezone

from relay.backends.base import Backend, BrokerUnavailable, EventRejected
from relay.messages import RelayEvent, read_batch, with_structured
from relay.models import Checkpoint

log = logging.getLogger("relay")

# First key of the two-key advisory lock; the second is hashtext(sink).
LOCK_CLASS = 4243
# Room left for the attributes when deciding without rendering that an event is under
# RELAY_MAX_MESSAGE_BYTES (64 attributes of at most 2048 characters: 128 KiB of ASCII). Only
# attributes full of multi-byte or escaped characters could slip past; the broker's own limit
# (dead-lettered too) still catches those.
ATTRIBUTES_BOUND = 256 * 1024


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _session() -> psycopg.Connection:
    """A psycopg session of the relay's own on Django's database (autocommit, read in binary)."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


def _backoff(failures: int, cap: float, base: float = 0.05) -> float:
    return random.uniform(0, min(cap, base * 2 ** min(failures, 30)))


class Relay:
    def __init__(
        self,
        backend: Backend,
        *,
        sink: str | None = None,
        batch_size: int | None = None,
        poll_seconds: float | None = None,
        standby_poll_seconds: float | None = None,
        backoff_max_seconds: float | None = None,
        max_message_bytes: int | None = None,
        on_published: Callable[[Sequence[RelayEvent], float], None] | None = None,
    ) -> None:
        self.backend = backend
        self.sink = sink or backend.alias
        self.batch_size = batch_size or settings.RELAY_BATCH_SIZE
        self.poll_seconds = poll_seconds or settings.RELAY_POLL_SECONDS
        self.standby_poll_seconds = standby_poll_seconds or settings.RELAY_STANDBY_POLL_SECONDS
        self.backoff_max_seconds = backoff_max_seconds or settings.RELAY_BACKOFF_MAX_SECONDS
        self.max_message_bytes = max_message_bytes or settings.RELAY_MAX_MESSAGE_BYTES
        # Called after each acknowledged batch with the time (monotonic) the acks were in.
        self.on_published = on_published
        self.position = 0
        self.epoch = 0
        self.failures = 0
        self.connected = False
        self.lock_conn: psycopg.Connection | None = None
        self.read_conn: psycopg.Connection | None = None
        self.holder = holder_name()
        self._last_heartbeat = 0.0
        # The next batch, read in the background while the current one is published.
        self._reader: ThreadPoolExecutor | None = None
        self._prefetched: tuple[int, Future] | None = None

    # --- leadership --------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.lock_conn is not None and not self.lock_conn.closed

    def try_acquire(self) -> bool:
        """Take the sink's lock if free; on success load the checkpoint and listen for appends."""
        if self.active:
            return True
        conn = _session()
        got = conn.execute(
            "SELECT pg_try_advisory_lock(%s, hashtext(%s))", [LOCK_CLASS, self.sink]
        ).fetchone()[0]
        if not got:
            conn.close()
            return False
        # This session also moves the checkpoint, without waiting for the WAL flush (see advance());
        # pages are read on a session of their own, so a read in flight never delays it.
        conn.execute("SET synchronous_commit = off")
        conn.execute("LISTEN flunq_events")
        self.lock_conn = conn
        self.read_conn = _session()
        self.load_checkpoint()
        Checkpoint.objects.filter(sink=self.sink).update(holder=self.holder, heartbeat_at=timezone.now())
        log.info("relay %s active at position %s (%s)", self.sink, self.position, self.backend.describe())
        return True

    def release(self) -> None:
        """Give up the lock (closing its session) and the broker connection."""
        self.disconnect()
        self._drop_prefetched()
        if self._reader is not None:
            self._reader.shutdown(wait=True)
            self._reader = None
        if self.lock_conn is not None:
            # Unlocked before the close returns: a closed session's locks go only when its server
            # process has exited, a moment later, and a standby trying then would miss them.
            with contextlib.suppress(psycopg.Error):
                self.lock_conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", [LOCK_CLASS, self.sink])
        for conn in (self.read_conn, self.lock_conn):
            if conn is not None:
                with contextlib.suppress(psycopg.Error):
                    conn.close()
        self.read_conn = self.lock_conn = None

    def disconnect(self) -> None:
        try:
            self.backend.close()
        finally:
            self.connected = False

    def load_checkpoint(self) -> None:
        checkpoint, _ = Checkpoint.objects.get_or_create(sink=self.sink)
        self.position, self.epoch = checkpoint.position, checkpoint.epoch

    # --- one batch ---------------------------------------------------------------------------

    def step(self) -> bool:
        """Publish one batch; True when there may be more to publish right away.

        Raises ``BrokerUnavailable`` (after recording it as the sink's last error) when the broker
        did not acknowledge the batch; the checkpoint has not moved.
        """
        events = self._take_prefetched() or self._read(self.position)
        if not events:
            self._heartbeat()
            return False
        if len(events) == self.batch_size:
            # Read the next batch while this one is on its way to the broker.
            self._prefetch(events[-1].position)
        results: list[EventRejected | None] = [None] * len(events)
        # Rule 1 of the dead letters: the CloudEvent in JSON over the limit. An event read without
        # its JSON is measured only when its data is not well under the limit.
        large = [event for event in events if event.json is None
                 and len(event.data or b"") * 2 + ATTRIBUTES_BOUND > self.max_message_bytes]  # fmt: skip
        if large:
            with_structured(large, self.read_conn)
        for index, event in enumerate(events):
            if event.json is not None and len(event.json) > self.max_message_bytes:
                results[index] = EventRejected(
                    f"message of {len(event.json)} bytes exceeds RELAY_MAX_MESSAGE_BYTES={self.max_message_bytes}"
                )
        to_send = [i for i, result in enumerate(results) if result is None]
        try:
            if to_send:
                if not self.connected:
                    self.backend.connect()
                    self.connected = True
                sent = self.backend.publish([events[i] for i in to_send])
                if len(sent) != len(to_send):
                    raise BrokerUnavailable(f"backend answered {len(sent)} results for {len(to_send)} events")
                for index, result in zip(to_send, sent, strict=True):
                    results[index] = result
        except BrokerUnavailable as exc:
            self.failures += 1
            self._drop_prefetched()
            self.disconnect()
            self._record_error(str(exc))
            raise
        acked_at = time.monotonic()
        self.failures = 0
        self.advance(events, results)
        if self.on_published is not None:
            self.on_published(events, acked_at)
        return len(events) == self.batch_size

    def advance(self, events: Sequence[RelayEvent], results: Sequence[EventRejected | None]) -> None:
        """Move the checkpoint past ``events``, storing dead letters in the same transaction.

        On the relay's own session: one statement when nothing is dead-lettered, and no wait for
        the WAL flush (``synchronous_commit`` is off there): losing this commit in a database crash
        only means publishing the batch again.
        """
        assert self.lock_conn is not None
        last = events[-1].position
        now = timezone.now()
        dead = [
            (self.sink, event.position, event.id, event.source, event.type, event.stream, str(result), now)
            for event, result in zip(events, results, strict=True)
            if result is not None
        ]
        with self.lock_conn.transaction() if dead else contextlib.nullcontext():
            moved = self.lock_conn.execute(
                "UPDATE flunq_relay_checkpoints SET position = %s, last_published_at = %s, last_error = '', "
                "heartbeat_at = %s, holder = %s WHERE sink = %s AND position = %s AND epoch = %s",
                [last, now, now, self.holder, self.sink, self.position, self.epoch],
            ).rowcount
            if moved and dead:
                self.lock_conn.cursor().executemany(
                    "INSERT INTO flunq_relay_dead_letters (sink, position, event_id, source, type, stream, "
                    "error, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    dead,
                )
        for _, position, *_, error, _ in dead if moved else ():
            log.warning("relay %s dead-lettered position %s: %s", self.sink, position, error)
        if moved:
            self.position = last
            self._last_heartbeat = time.monotonic()
        else:
            # Rewound (or moved by someone else) meanwhile: continue from there.
            self._drop_prefetched()
            self.load_checkpoint()
            log.info("relay %s checkpoint moved to %s by a rewind", self.sink, self.position)

    def _prefetch(self, after: int) -> None:
        if self._reader is None:
            self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"relay-{self.sink}-read")
        self._prefetched = (after, self._reader.submit(self._read, after))

    def _read(self, after: int) -> list[RelayEvent]:
        return read_batch(
            after,
            self.batch_size,
            self.read_conn,
            binary=self.backend.reads_binary,
            structured=self.backend.reads_structured,
        )

    def _take_prefetched(self) -> list[RelayEvent]:
        if self._prefetched is None:
            return []
        after, future = self._prefetched
        self._prefetched = None
        return future.result() if after == self.position else []

    def _drop_prefetched(self) -> None:
        if self._prefetched is not None:
            self._prefetched[1].cancel()
            self._prefetched = None

    def _record_error(self, message: str) -> None:
        log.warning("relay %s: broker unavailable (attempt %s): %s", self.sink, self.failures, message)
        Checkpoint.objects.filter(sink=self.sink).update(
            last_error=message[:2000], last_error_at=timezone.now()
        )

    def _heartbeat(self) -> None:
        if time.monotonic() - self._last_heartbeat >= 1.0:
            Checkpoint.objects.filter(sink=self.sink).update(heartbeat_at=timezone.now(), holder=self.holder)
            self._last_heartbeat = time.monotonic()

    def backoff(self) -> float:
        return _backoff(self.failures, self.backoff_max_seconds)

    # --- the loop ----------------------------------------------------------------------------

    def wait_for_appends(self, stop: threading.Event) -> None:
        """Sleep until an append commits (NOTIFY), the poll interval passes, or ``stop``."""
        assert self.lock_conn is not None
        deadline = time.monotonic() + self.poll_seconds
        while not stop.is_set() and (remaining := deadline - time.monotonic()) > 0:
            # Short slices, so a stop request is seen quickly.
            for _ in self.lock_conn.notifies(timeout=min(remaining, 0.25), stop_after=1):
                return

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set; finish the batch in flight first."""
        try:
            while not stop.is_set():
                try:
                    if not self.try_acquire():
                        stop.wait(self.standby_poll_seconds)
                        continue
                    if self.step():
                        continue
                    self.wait_for_appends(stop)
                except BrokerUnavailable:
                    stop.wait(self.backoff())
                except (DatabaseError, InterfaceError, psycopg.Error) as exc:
                    # The lock's session may be gone with the database: stand down, then compete again.
                    log.warning("relay %s: database error, standing down: %s", self.sink, exc)
                    self.release()
                    self.failures += 1
                    connection.close()
                    stop.wait(self.backoff())
                except Exception as exc:
                    # A client library failing in a way it does not document: keep the relay alive,
                    # say so where operators look, and retry like any broker error.
                    log.exception("relay %s: unexpected error", self.sink)
                    self.failures += 1
                    self.disconnect()
                    self._drop_prefetched()
                    try:
                        self._record_error(f"unexpected: {exc!r}")
                    except Exception:
                        log.exception("relay %s: could not record the error", self.sink)
                    stop.wait(self.backoff())
        finally:
            self.release()
            connection.close()
