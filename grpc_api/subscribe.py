"""``Subscribe``: catch up from the log, then follow it live, in position order, without gaps.

Every subscription is a cursor over the log read with ``events.selectors.read_all`` (so only up to
the safe horizon: an append still in flight with a lower position holds later ones back until it
commits). It reads page after page until it reaches the horizon, says ``caught_up``, then waits
for a wake-up and reads again. Wake-ups come from one ``LISTEN flunq_events`` connection per
process (the append function notifies at commit), with a polling fallback because a notification
can be lost and the horizon can also move when a transaction that appended nothing ends.

Nothing is dropped: a slow client slows its own reads (HTTP/2 flow control holds each write).
A client that takes no message for ``GRPC_SUBSCRIBE_SEND_TIMEOUT_SECONDS`` is told so, as the
websocket feed tells a client that fell too far behind: the call ends with RESOURCE_EXHAUSTED,
error code ``subscriber_too_slow`` and ``resume_after``, the position to subscribe from again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import grpc
import psycopg
from django.conf import settings

from access import tenancy
from access.principal import Principal
from events import horizon, selectors
from flunq_events.aio import wait_event
from flunq_events.errors import ServiceError
from grpc_api import convert
from grpc_api.generated.flunq.events.v1 import events_pb2 as pb
from grpc_api.rpc import DatabaseThreads

log = logging.getLogger(__name__)

CHANNEL = "flunq_events"
# Re-read this often without a notification (less often while LISTEN is connected).
POLL_SECONDS_LISTENING = 2.0
POLL_SECONDS_NOT_LISTENING = 0.5
# While events are filtered out, tell the client its position at most this often.
CHECKPOINT_SECONDS = 1.0


class SubscriberTooSlow(ServiceError):
    code = "subscriber_too_slow"
    http_status = 429


class Notifier:
    """One LISTEN connection for the process; every notification wakes every subscription."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Event] = set()
        self._task: asyncio.Task | None = None
        self.listening = False

    def register(self) -> asyncio.Event:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._listen(), name="flunq-listen")
        waiter = asyncio.Event()
        self._waiters.add(waiter)
        return waiter

    def unregister(self, waiter: asyncio.Event) -> None:
        self._waiters.discard(waiter)

    def _wake_all(self) -> None:
        for waiter in self._waiters:
            waiter.set()

    async def _listen(self) -> None:
        delay = 0.2
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    **_connection_params(), autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening, delay = True, 0.2
                    self._wake_all()  # whatever was committed while not listening
                    async for _ in conn.notifies():
                        self._wake_all()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: fall back to polling, reconnect with backoff
                log.warning("LISTEN %s failed (%s); polling until it reconnects", CHANNEL, exc)
            self.listening = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None


def _connection_params() -> dict:
    # Django's own parameters (host, sslmode, options, ...), minus what only its cursors use.
    from django.db import connections

    params = connections["default"].get_connection_params()
    for key in ("cursor_factory", "context"):
        params.pop(key, None)
    return params


notifier = Notifier()


def _start_after(request: pb.SubscribeRequest) -> int:
    start = request.WhichOneof("start")
    if start == "after":
        # At most the end of the log, as a subscription's start (horizon.log_end says why).
        return min(convert.non_negative(request.after, "after"), horizon.log_end())
    if start == "from_time":
        return selectors.position_at(convert.moment(request.from_time, "from_time"))
    return horizon.current()


class Subscription:
    def __init__(
        self,
        request: pb.SubscribeRequest,
        principal: Principal,
        context: grpc.aio.ServicerContext,
        threads: DatabaseThreads,
    ) -> None:
        self.request = request
        self.context = context
        self.threads = threads
        # The filter of REST and the websocket feed, narrowed to the caller's tenant.
        self.filter = tenancy.scope_filter(principal, convert.event_filter(request.filter))
        self.page_size = settings.PAGE_SIZE_MAX
        self.delivered = 0  # everything up to here has reached the client (the resume point)

    async def _send(self, message: pb.SubscribeResponse, position: int) -> None:
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can lose the handler's
            # cancellation (the client went away) when the write completes in the same moment.
            async with asyncio.timeout(settings.GRPC_SUBSCRIBE_SEND_TIMEOUT_SECONDS):
                await self.context.write(message)
        except TimeoutError:
            raise SubscriberTooSlow(
                f"the client took no message for {settings.GRPC_SUBSCRIBE_SEND_TIMEOUT_SECONDS} s; "
                f"subscribe again with after={self.delivered}",
                resume_after=self.delivered,
            ) from None
        self.delivered = position

    async def run(self) -> None:
        after = await self.threads.run(_start_after, self.request)
        self.delivered = after
        waiter = notifier.register()
        caught_up = False
        last_sent = time.monotonic()
        try:
            while True:
                waiter.clear()  # a notification during the read below triggers another read
                page = await self.threads.run(selectors.read_all, after, self.page_size, self.filter)
                for event in page.events:
                    await self._send(pb.SubscribeResponse(event=convert.recorded(event)), event["position"])
                if page.events:
                    last_sent = time.monotonic()
                # Every event up to next_after was sent or filtered out: resuming there loses nothing.
                moved, after = page.next_after > after, page.next_after
                self.delivered = after
                if len(page.events) == self.page_size:
                    continue  # catching up: the next page is there already
                if not caught_up:
                    caught_up = True
                    await self._send(pb.SubscribeResponse(caught_up=pb.CaughtUp(position=after)), after)
                    last_sent = time.monotonic()
                elif moved and not page.events and time.monotonic() - last_sent >= CHECKPOINT_SECONDS:
                    await self._send(pb.SubscribeResponse(checkpoint=pb.Checkpoint(position=after)), after)
                    last_sent = time.monotonic()
                poll = POLL_SECONDS_LISTENING if notifier.listening else POLL_SECONDS_NOT_LISTENING
                await wait_event(waiter, poll)
        finally:
            notifier.unregister(waiter)
