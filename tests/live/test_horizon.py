"""Every live reader waits for a held append: nothing past it until it commits, then both in order."""

from __future__ import annotations

import orjson
import psycopg
import pytest

from events import services
from live import db
from tests.conftest import database_url_of_test_db
from tests.events.helpers import new_event
from tests.live.conftest import connect, receive_events, receive_until, wait_for
from tests.live.sse_client import SSE

pytestmark = pytest.mark.django_db(transaction=True)


def open_append(stream: str) -> tuple[psycopg.Connection, int]:
    """``flunq_append`` on its own connection, its transaction left open; the connection and position."""
    conn = psycopg.connect(database_url_of_test_db())
    row = new_event("task.held").row(stream)
    position = conn.execute(
        "SELECT o_position FROM flunq_append(%s::json)", [orjson.dumps([row]).decode()]
    ).fetchone()[0]
    return conn, position


async def hold_then_commit_later(tailer):
    """Hold one append open, commit a later one; the tailer must have read past the later commit."""
    held, low = await db.run(open_append, "held-1")
    high = (await db.run(services.append, [new_event("task.later")])).events[0].position
    assert high > low
    await wait_for(lambda: tailer.newest >= high)
    assert tailer.cursor < low
    return held, low, high


async def test_websocket_feed_waits_for_the_held_transaction(tailer, token_for):
    ws = await connect("/ws/events", await token_for())
    await receive_until(ws, "caught_up")
    held, low, high = await hold_then_commit_later(tailer)
    try:
        assert await ws.receive_nothing(0.3)
        await db.run(held.commit)
        assert [e["position"] for e in await receive_events(ws, 2)] == [low, high]
    finally:
        await db.run(held.close)
    await ws.disconnect()


async def test_sse_feed_waits_for_the_held_transaction(tailer, token_for):
    token = await token_for()
    stream = SSE("/api/v1/events/stream", headers=[(b"authorization", f"Bearer {token}".encode())])
    assert await stream.start() == 200
    await stream.frames_until("caught_up")
    held, low, high = await hold_then_commit_later(tailer)
    try:
        assert await stream.nothing(0.3)
        await db.run(held.commit)
        frames = await stream.events(2)
        assert [f["data"]["position"] for f in frames] == [low, high]
        assert [f["id"] for f in frames] == [str(low), str(high)]
    finally:
        await db.run(held.close)
    await stream.close()
