"""The per-process log tailer: one LISTEN, one read per wake-up, fanned out to every live client.

Each server process runs one ``LogTailer`` (per event loop). It LISTENs on the PostgreSQL channel
``flunq_events`` (``flunq_append`` notifies at commit) and, on each wake-up, reads the events
after its cursor up to the safe horizon and hands them, as one ``Batch``, to the ``Mailbox`` of
every client feed in the process. Clients never query the log while live, so N clients cost one
read per wake-up, not N.

Every process tails the log itself: an event appended through any process reaches websockets on
all of them, with the log (not a broker) deciding what and in which order. NOTIFY can be lost and
the horizon can lag (a transaction holding an older xid still runs; its end sends no NOTIFY when it
is not an append), so the tailer also polls: every LIVE_POLL_SECONDS, and quickly, with back-off,
while the horizon is behind the newest committed event.

A batch covers a position range ``(lo, hi]`` completely: it carries every event in it. Feeds use
that to join, skip what they have, and detect gaps they must read from the log (see ``live.feed``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from django.conf import settings
from psycopg.conninfo import make_conninfo

from events.selectors import COLUMNS, to_cloudevent
from flunq_events import db
from flunq_events.aio import wait_event
from live.wire import text_frame

logger = logging.getLogger(__name__)

CHANNEL = "flunq_events"
# One round trip per read: the horizon, the newest committed position, and the events after the
# cursor up to that horizon, all in one statement and so one snapshot (the horizon is computed
# from that snapshot, so every event at or below it is visible in it). OFFSET 0 keeps the horizon
# computed once: without it the inlined flunq_horizon() is evaluated again for every row.
_READ = (
    "SELECT h.horizon, h.newest, e.* FROM (SELECT flunq_horizon() AS horizon, "
    '(SELECT coalesce(max("position"), 0) FROM flunq_events) AS newest OFFSET 0) h '
    f'LEFT JOIN LATERAL (SELECT {COLUMNS} FROM flunq_events WHERE "position" > %s '
    'AND "position" <= h.horizon ORDER BY "position" LIMIT %s) e ON true'
)
_HORIZON = 'SELECT flunq_horizon(), (SELECT coalesce(max("position"), 0) FROM flunq_events)'


def render(event: dict[str, Any]) -> str:
    """A stored event as JSON text, exactly as the REST API renders it (``flunq_events.api``)."""
    return orjson.dumps(event, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS).decode()


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One event, rendered once per process: the CloudEvent (for filters), its JSON text and the
    websocket frame carrying that text (``live.wire``)."""

    position: int
    event: dict[str, Any]
    text: str
    frame: bytes

    @classmethod
    def of(cls, event: dict[str, Any]) -> LiveEvent:
        text = render(event)
        return cls(event["position"], event, text, text_frame(text.encode()))

    @classmethod
    def from_row(cls, row: tuple) -> LiveEvent:
        event = to_cloudevent(row)
        # Rendered in UTC, as Django's connection (and so the REST API) renders them, whatever
        # the server's TimeZone.
        event["recordedtime"] = event["recordedtime"].astimezone(UTC)
        if isinstance(event.get("time"), datetime):
            event["time"] = event["time"].astimezone(UTC)
        return cls.of(event)


@dataclass(frozen=True, slots=True)
class Batch:
    """Every event with ``lo < position <= hi``, in position order."""

    lo: int
    hi: int
    events: tuple[LiveEvent, ...]


class Mailbox:
    """A client's bounded queue of batches. Past ``limit`` queued events it overflows: it is
    emptied and closed, and the feed tells its client where to resume (never a silent drop)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.batches: deque[Batch] = deque()
        self.pending = 0
        self.overflowed = False
        self._ready = asyncio.Event()
        # The heartbeat timer (see ``wait``): when the current wait ends at the latest, and the
        # one timer armed for it, re-armed lazily rather than created for every wait.
        self._wake_at: float | None = None
        self._timer: asyncio.TimerHandle | None = None

    def put(self, batch: Batch) -> bool:
        """Queue ``batch``; False when the mailbox overflowed (then it takes nothing more)."""
        if self.overflowed:
            return False
        # A batch is taken whole while the client is under its limit, so one large append never
        # overflows a client that keeps up.
        if self.pending >= self.limit:
            self.overflowed = True
            self.batches.clear()
            self.pending = 0
            self._ready.set()
            return False
        self.batches.append(batch)
        self.pending += len(batch.events)
        self._ready.set()
        return True

    def take(self) -> Batch | None:
        if not self.batches:
            self._ready.clear()
            return None
        batch = self.batches.popleft()
        self.pending -= len(batch.events)
        return batch

    async def wait(self, timeout: float | None) -> None:
        """Until a batch, an overflow or ``wake()``; at most ``timeout`` seconds (then the caller
        finds no batch).

        A client that keeps up waits once per batch, hundreds of times a second, and its timeout
        (the heartbeat interval) is seconds long: rather than a timer per wait (``call_later`` and
        ``cancel``, or ``asyncio.wait_for`` and its task), one timer stays armed and, when it
        fires early because waits ended meanwhile, re-arms itself for the current one's end."""
        if self._ready.is_set():
            return
        if timeout is None:
            await self._ready.wait()
            return
        loop = asyncio.get_running_loop()
        self._wake_at = wake_at = loop.time() + timeout
        if self._timer is None or self._timer.when() > wake_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(wake_at, self._expire)
        try:
            await self._ready.wait()
        finally:
            self._wake_at = None

    def _expire(self) -> None:
        self._timer = None
        if self._wake_at is None:  # no wait in progress: the next one arms a timer again
            return
        loop = asyncio.get_running_loop()
        # Timers may fire a little early (uvloop counts in milliseconds): close enough is due.
        if loop.time() >= self._wake_at - 0.002:
            self._ready.set()
        else:
            self._timer = loop.call_at(self._wake_at, self._expire)

    def wake(self) -> None:
        self._ready.set()


def conninfo() -> str:
    """Django's default database (the test database under pytest), named in pg_stat_activity."""
    return make_conninfo(db.conninfo(), application_name="flunq-live-tailer")


class LogTailer:
    def __init__(self, *, page_size: int, poll_seconds: float) -> None:
        self.page_size = page_size
        self.poll_seconds = poll_seconds
        self.subscribers: set[Mailbox] = set()
        # Everything up to ``cursor`` has been handed to subscribers; None until connected.
        self.cursor: int | None = None
        self.horizon = 0
        self.newest = 0  # the highest committed position seen by the last read
        self.reads = 0
        self.started = asyncio.Event()
        self._broadcast_hi = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    # --- clients ---------------------------------------------------------------------------------

    def subscribe(self, limit: int) -> Mailbox:
        mailbox = Mailbox(limit)
        self.subscribers.add(mailbox)
        self.start()
        return mailbox

    def unsubscribe(self, mailbox: Mailbox) -> None:
        self.subscribers.discard(mailbox)

    def poke(self) -> None:
        """Read now (e.g. a client asked for a position the tailer has not reached)."""
        self._wake.set()

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="flunq-live-tailer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            # asyncio.wait: the task's cancellation ends it quietly, the caller's still propagates.
            await asyncio.wait({self._task})
            self._task = None

    async def _run(self) -> None:
        delay = 0.1
        while True:
            try:
                await self._session(conninfo())
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                logger.warning("live tailer lost the database (%s); retrying in %.1fs", exc, delay)
            except Exception:
                logger.exception("live tailer failed; restarting in %.1fs", delay)
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 5.0)

    async def _session(self, info: str) -> None:
        async with (
            await psycopg.AsyncConnection.connect(info, autocommit=True) as listener,
            await psycopg.AsyncConnection.connect(info, autocommit=True) as reader,
        ):
            await listener.execute(f"LISTEN {CHANNEL}")
            listening = asyncio.create_task(self._listen(listener))
            try:
                if self.cursor is None:
                    self.cursor = self._broadcast_hi = (await self._positions(reader))[0]
                    self.started.set()
                lag_wait = 0.002
                while True:
                    self._wake.clear()
                    lagging = await self.step(reader)
                    if listening.done():
                        listening.result()  # the listener's error: reconnect both
                    if lagging:
                        timeout, lag_wait = lag_wait, min(lag_wait * 2, 0.1)
                    else:
                        timeout, lag_wait = self.poll_seconds, 0.002
                    if not self._wake.is_set():  # (a NOTIFY during the read: read again now)
                        await wait_event(self._wake, timeout)
            finally:
                listening.cancel()

    async def _listen(self, conn: psycopg.AsyncConnection) -> None:
        try:
            async for _ in conn.notifies():
                self._wake.set()
        finally:
            self._wake.set()

    async def _positions(self, conn: psycopg.AsyncConnection) -> tuple[int, int]:
        cursor = await conn.execute(_HORIZON)
        horizon, newest = await cursor.fetchone()
        return horizon, newest

    async def step(self, conn: psycopg.AsyncConnection) -> bool:
        """One read: every event up to the horizon to the subscribers. True while lagging."""
        while True:
            cursor = await conn.execute(_READ, (self.cursor, self.page_size))
            rows = await cursor.fetchall()
            self.reads += 1
            horizon, newest = rows[0][0], rows[0][1]
            if rows[0][2] is None:  # no event after the cursor up to the horizon
                break
            full = len(rows) == self.page_size
            hi = rows[-1][2] if full else horizon
            self._broadcast(Batch(self._broadcast_hi, hi, tuple(LiveEvent.from_row(r[2:]) for r in rows)))
            self._broadcast_hi = self.cursor = hi
            if not full:
                break
        self.cursor = max(self.cursor, horizon)
        self.horizon, self.newest = horizon, newest
        return horizon < newest

    def _broadcast(self, batch: Batch) -> None:
        for mailbox in [m for m in self.subscribers if not m.put(batch)]:
            self.subscribers.discard(mailbox)


_tailers: dict[asyncio.AbstractEventLoop, LogTailer] = {}


def get_tailer() -> LogTailer:
    """The tailer of the running event loop (one per server process)."""
    loop = asyncio.get_running_loop()
    tailer = _tailers.get(loop)
    if tailer is None:
        for old in [other for other in _tailers if other.is_closed()]:
            del _tailers[old]
        tailer = _tailers[loop] = LogTailer(
            page_size=settings.LIVE_PAGE_SIZE, poll_seconds=settings.LIVE_POLL_SECONDS
        )
    return tailer


async def stop_tailer() -> None:
    """Stop the running loop's tailer (tests, shutdown)."""
    tailer = _tailers.pop(asyncio.get_running_loop(), None)
    if tailer is not None:
        await tailer.stop()


def connected_clients() -> int:
    """Feeds attached to a tailer in this process (websockets and SSE), for /metrics."""
    return sum(len(tailer.subscribers) for loop, tailer in list(_tailers.items()) if not loop.is_closed())
