"""The feed on its own: a client that falls behind is told where to resume, and loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

import pytest

from events.selectors import EventFilter
from live.feed import Feed
from live.query import Start
from live.tailer import LogTailer
from tests.live.conftest import append_one, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


async def test_overflow_sends_resync_and_resuming_there_loses_and_repeats_nothing(tailer):
    first = await append_one("task.before")
    feed = Feed(EventFilter(), Start("position", first - 1), buffer=2, heartbeat=0)
    items = feed.items()
    assert [(await anext(items)).kind for _ in range(3)] == ["subscribed", "events", "caught_up"]

    # The client reads nothing while three appends arrive, one batch each: the third overflows.
    positions = []
    for index in range(3):
        positions.append(await append_one("task.behind", taskid=str(index)))
        await wait_for(lambda: tailer.cursor >= positions[-1])
    resync = await anext(items)
    assert (resync.kind, resync.position) == ("resync", first)
    with pytest.raises(StopAsyncIteration):
        await anext(items)
    assert tailer.subscribers == set()

    resumed = Feed(EventFilter(), Start("position", resync.position), heartbeat=0).items()
    seen = []
    async for item in resumed:
        if item.kind == "events":
            seen += [live.position for live in item.events]
        if item.kind == "caught_up":
            break
    assert seen == positions
    await resumed.aclose()


async def test_a_batch_larger_than_the_buffer_is_taken_by_a_client_that_keeps_up(tailer):
    from events import services
    from live import db
    from tests.events.helpers import new_event

    feed = Feed(EventFilter(types=["bulk.*"]), Start("now"), buffer=2, heartbeat=0)
    items = feed.items()
    assert [(await anext(items)).kind for _ in range(2)] == ["subscribed", "caught_up"]
    result = await db.run(services.append, [new_event("bulk.item") for _ in range(5)])
    got = []
    while len(got) < 5:
        got += [live.position for live in (await anext(items)).events]
    assert got == [e.position for e in result.events]
    await items.aclose()


async def test_a_start_that_comes_while_the_first_is_resolved_holds(tailer, monkeypatch):
    """A client's ``filter`` message with a ``from``, sent right after connecting, lands while the
    feed resolves its first start in a thread: the later start wins, and is not lost."""
    from live import db

    first = await append_one("race.one")
    second = await append_one("race.two")
    feed = Feed(EventFilter(types=["race.*"]), Start("position", second), heartbeat=0)
    run = db.run

    async def racing(function, *args, **kwargs):
        if getattr(function, "__self__", None) == Start("position", second):
            feed.change(feed.filter, Start("beginning"))
        return await run(function, *args, **kwargs)

    monkeypatch.setattr(db, "run", racing)
    items = feed.items()
    subscribed = await anext(items)
    assert (subscribed.kind, subscribed.position) == ("subscribed", 0)
    events = await anext(items)
    assert [live.position for live in events.events] == [first, second]
    await items.aclose()


async def test_a_change_while_subscribed_is_sent_is_announced_before_any_event(tailer):
    """The client is told ``subscribed`` with the filter of that moment; a change that came while
    it was sent was used for the next page, so events of the new filter followed the old one."""
    other = await append_one("swap.other")
    feed = Feed(EventFilter(types=["swap.one"]), Start("position", other - 1), heartbeat=0)
    items = feed.items()
    subscribed = await anext(items)  # the consumer sends it, describing types=swap.one ...
    feed.change(EventFilter(types=["swap.other"]))  # ... and the change arrives meanwhile
    again = await anext(items)
    assert (again.kind, again.position) == ("subscribed", subscribed.position)
    events = await anext(items)
    assert [live.position for live in events.events] == [other]
    await items.aclose()


async def test_an_idle_feed_sends_heartbeats_and_then_the_next_event(tailer):
    feed = Feed(EventFilter(types=["beat.*"]), Start("now"), heartbeat=0.05)
    items = feed.items()
    assert [(await anext(items)).kind for _ in range(2)] == ["subscribed", "caught_up"]
    beats = [await anext(items) for _ in range(2)]
    assert [item.kind for item in beats] == ["heartbeat", "heartbeat"]
    position = await append_one("beat.one")
    item = await anext(items)
    while item.kind == "heartbeat":
        item = await anext(items)
    assert (item.kind, [live.position for live in item.events]) == ("events", [position])
    await items.aclose()


async def test_the_tailer_hands_out_contiguous_batches_page_by_page():
    from events import services
    from live import db
    from tests.events.helpers import new_event

    tailer = LogTailer(page_size=2, poll_seconds=1.0)
    mailbox = tailer.subscribe(10**6)
    try:
        await tailer.started.wait()
        start = tailer.cursor
        result = await db.run(services.append, [new_event("page.item") for _ in range(5)])
        positions = [e.position for e in result.events]
        await wait_for(lambda: tailer.cursor >= positions[-1])
        batches = []
        while (batch := mailbox.take()) is not None:
            batches.append(batch)
    finally:
        await tailer.stop()
    assert batches[0].lo <= start
    for before, after in itertools.pairwise(batches):
        assert after.lo == before.hi  # nothing between two batches is left out
    for batch in batches:
        assert len(batch.events) <= 2
        assert all(batch.lo < live.position <= batch.hi for live in batch.events)
    got = [live.position for batch in batches for live in batch.events]
    assert [p for p in got if p in positions] == positions
    assert got == sorted(set(got))
    assert all(live.frame.endswith(live.text.encode()) for batch in batches for live in batch.events)


async def test_the_tailer_stops_when_woken_in_the_same_moment():
    """A NOTIFY arriving as the tailer is stopped must not swallow the stop (it did, through
    asyncio.wait_for on Python 3.11, and stop() then waited forever)."""
    for _ in range(3):
        tailer = LogTailer(page_size=10, poll_seconds=1.0)
        tailer.start()
        await asyncio.wait_for(tailer.started.wait(), 30)
        await asyncio.sleep(0.05)  # idle, waiting to be woken
        # Woken and stopped in the same iteration of the loop (wait_for runs stop() as a task:
        # the poke is queued first so that both land together).
        asyncio.get_running_loop().call_soon(tailer.poke)
        task = tailer._task
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tailer.stop(), 10)
        assert task.done()
