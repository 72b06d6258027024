"""One client's feed: catch up from the log, then follow the tailer, in position order, once each.

``Feed.items()`` yields what to send, and resumes only after the caller has sent it, so
``feed.cursor`` is always "every matching event up to here has been handed out":

1. ``subscribed``: the start is resolved to a position (``from``: position, time, beginning,
   now) and echoed with the filter.
2. Catch-up: pages of the log after the cursor up to the safe horizon (``selectors.read_all``),
   until a page is not full.
3. Join the process's ``LogTailer``: register a ``Mailbox``, read from the log up to the tailer's
   cursor, then ``caught_up``.
4. Live: each batch covers ``(lo, hi]`` completely; a batch at or below the cursor is skipped, one
   that starts above it is preceded by a read of the gap from the log, and only events above the
   cursor are delivered. Ordering and exactly-once follow from positions alone, whatever the
   timing of catch-up, joining, reconnects of the tailer or filter changes.
5. ``resync``: the mailbox overflowed (the client did not keep up); the feed ends, naming the
   position to resume from. ``heartbeat``: nothing for LIVE_HEARTBEAT_SECONDS; carries the cursor,
   which also advances over events the filter skipped.

A filter change restarts the feed at its cursor (or at a new ``from``) with the new filter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

from django.conf import settings

from events import selectors
from events.selectors import EventFilter
from live import db
from live.query import Start, describe
from live.tailer import LiveEvent, LogTailer, Mailbox, get_tailer


@dataclass(frozen=True, slots=True)
class Item:
    """Something to send: ``events`` (in position order, ``position`` the last one's), or a
    control message (``subscribed``, ``caught_up``, ``heartbeat``, ``resync``) carrying the
    feed's position."""

    kind: str
    position: int
    events: list[LiveEvent] | None = None

    def control(self, **extra) -> dict:
        return {"type": self.kind, "position": self.position, **extra}


def _matches_everything(filter_: EventFilter) -> bool:
    return (not filter_.types or "*" in filter_.types) and all(
        getattr(filter_, name) is None for name in (*EventFilter.EQUALITY, "category", "since", "until")
    )


class Feed:
    def __init__(
        self,
        filter_: EventFilter,
        start: Start,
        *,
        buffer: int | None = None,
        page_size: int | None = None,
        heartbeat: float | None = None,
    ) -> None:
        self.filter = filter_
        self._everything = _matches_everything(filter_)
        self.cursor: int | None = None
        self.buffer = buffer or settings.LIVE_CLIENT_BUFFER
        self.page_size = page_size or settings.LIVE_PAGE_SIZE
        heartbeat = settings.LIVE_HEARTBEAT_SECONDS if heartbeat is None else heartbeat
        self.heartbeat = heartbeat or None
        self._start: Start | None = start
        self._restart = False
        self._changes = 0  # change() calls so far: a start that came while another was resolved
        self._mailbox: Mailbox | None = None

    def change(self, filter_: EventFilter, start: Start | None = None) -> None:
        """Use ``filter_`` from the cursor on (or from ``start``); takes effect before the next event."""
        self.filter = filter_
        self._everything = _matches_everything(filter_)
        self._start = start
        self._restart = True
        self._changes += 1
        if self._mailbox is not None:
            self._mailbox.wake()

    async def items(self) -> AsyncIterator[Item]:
        tailer = get_tailer()
        while True:
            self._restart = False
            start, changes = self._start, self._changes
            if start is not None:
                cursor = await db.run(start.resolve)
                if self._changes != changes and self._start is not None:
                    continue  # another start came while this one was resolved: that one holds
                self.cursor, self._start = cursor, None
            yield Item("subscribed", self.cursor)
            if self._restart:
                continue  # changed while "subscribed" went out: announce the change before any event
            async with aclosing(self._run(tailer)) as run:
                async for item in run:
                    yield item
                    if item.kind == "resync":
                        return
                    if self._restart:
                        break
            if not self._restart:
                return

    @property
    def description(self) -> dict:
        return describe(self.filter)

    async def _read(self, upper: int | None) -> AsyncIterator[Item]:
        """Matching events after the cursor from the log, up to ``upper`` or the horizon."""
        while True:
            page = await db.run(selectors.read_all, self.cursor, self.page_size, self.filter, horizon=upper)
            if page.events:
                self.cursor = page.events[-1]["position"]
                yield Item("events", self.cursor, [LiveEvent.of(e) for e in page.events])
                if self._restart or self._overflowed:
                    return
            self.cursor = max(self.cursor, page.next_after)
            if len(page.events) < self.page_size:
                return

    @property
    def _overflowed(self) -> bool:
        return self._mailbox is not None and self._mailbox.overflowed

    def _select(self, events: tuple[LiveEvent, ...], after: int) -> list[LiveEvent]:
        if self._everything:
            return [live for live in events if live.position > after]
        matches = self.filter.matches
        return [live for live in events if live.position > after and matches(live.event)]

    async def _run(self, tailer: LogTailer) -> AsyncIterator[Item]:
        async for item in self._read(None):
            yield item
            if self._restart:
                return
        mailbox = self._mailbox = tailer.subscribe(self.buffer)
        try:
            await tailer.started.wait()
            # Batches queued from here on start at or after the tailer's cursor; read up to it.
            if self.cursor < tailer.cursor:
                async for item in self._read(tailer.cursor):
                    yield item
                    if self._restart:
                        return
            if self._overflowed:
                yield Item("resync", self.cursor)
                return
            yield Item("caught_up", self.cursor)
            while not self._restart:
                batch = mailbox.take()
                if batch is None:
                    if mailbox.overflowed:
                        yield Item("resync", self.cursor)
                        return
                    await mailbox.wait(self.heartbeat)
                    if not mailbox.batches and not mailbox.overflowed and not self._restart:
                        yield Item("heartbeat", self.cursor)
                    continue
                if batch.hi <= self.cursor:
                    continue
                if batch.lo > self.cursor:
                    async for item in self._read(batch.lo):
                        yield item
                        if self._restart:
                            return
                    if mailbox.overflowed:
                        yield Item("resync", self.cursor)
                        return
                # A client that fell a little behind gets what is queued in one item (fewer
                # wake-ups and writes), up to a page; batches are contiguous, so this keeps order.
                hi, chosen = batch.hi, self._select(batch.events, self.cursor)
                while mailbox.batches and mailbox.batches[0].lo <= hi and len(chosen) < self.page_size:
                    following = mailbox.take()
                    chosen += self._select(following.events, hi)
                    hi = max(hi, following.hi)
                if chosen:
                    self.cursor = chosen[-1].position
                    yield Item("events", self.cursor, chosen)
                    if self._restart:
                        return
                    if mailbox.overflowed:
                        yield Item("resync", self.cursor)
                        return
                self.cursor = hi
        finally:
            tailer.unsubscribe(mailbox)
            self._mailbox = None
