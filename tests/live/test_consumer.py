"""The websocket feed: catch-up then live, in order, once each; filters, starts, client messages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.live.conftest import append_one, connect, receive_events, receive_until, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


async def test_catches_up_from_the_beginning_then_stays_live_in_order(tailer, token_for):
    token = await token_for(["events:read"])
    first = [await append_one("task.started", taskid=f"t{i}") for i in range(3)]
    ws = await connect("/ws/events?from=beginning", token)
    messages = await receive_until(ws, "caught_up")
    assert messages[0] == {"type": "subscribed", "position": 0, "filter": {}}
    events = [m for m in messages if "specversion" in m]
    assert [e["position"] for e in events] == first
    assert {"stream", "version", "position", "recordedtime", "id", "source", "type"} <= set(events[0])
    assert messages[-1]["position"] == first[-1]

    later = [await append_one("task.completed", taskid=f"t{i}") for i in range(3)]
    live = await receive_events(ws, 3)
    assert [e["position"] for e in live] == later
    assert [e["type"] for e in live] == ["task.completed"] * 3
    assert await ws.receive_nothing(0.05)
    await ws.disconnect()


async def test_default_start_is_now(tailer, token_for):
    await append_one("task.old")
    ws = await connect("/ws/events", await token_for())
    subscribed, caught_up = await receive_until(ws, "caught_up")
    assert subscribed["type"] == "subscribed" and caught_up["position"] == subscribed["position"]
    position = await append_one("task.new")
    [event] = await receive_events(ws, 1)
    assert (event["type"], event["position"]) == ("task.new", position)
    await ws.disconnect()


async def test_start_at_a_position_and_at_a_time(tailer, token_for):
    token = await token_for()
    one = await append_one("task.one")
    moment = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    two = await append_one("task.two")
    three = await append_one("task.three")

    ws = await connect(f"/ws/events?from={one}", token)
    events = [m for m in await receive_until(ws, "caught_up") if "specversion" in m]
    assert [e["position"] for e in events] == [two, three]
    await ws.disconnect()

    ws = await connect(f"/ws/events?from={moment}", token)
    events = [m for m in await receive_until(ws, "caught_up") if "specversion" in m]
    assert [e["position"] for e in events] == [two, three]
    await ws.disconnect()


async def test_a_start_past_the_end_of_the_log_is_its_end(tailer, token_for):
    """As a subscription's start: the feed skipped every event appended until the log got there."""
    last = await append_one("task.before")
    ws = await connect(f"/ws/events?from={last + 1000}", await token_for())
    subscribed, _ = await receive_until(ws, "caught_up")
    assert subscribed["position"] <= last
    position = await append_one("task.after")
    [event] = await receive_events(ws, 1)
    assert event["position"] == position
    await ws.disconnect()


async def test_filters_by_type_wildcard_stream_category_and_attributes(tailer, token_for):
    token = await token_for()
    ws_types = await connect("/ws/events?types=task.*&types=workflow.created", token)
    ws_stream = await connect("/ws/streams/execution-e1", token)
    ws_category = await connect("/ws/events?category=workflow&source=/tests", token)
    ws_ids = await connect("/ws/events?workflowid=w2&executionid=e2", token)
    for ws in (ws_types, ws_stream, ws_category, ws_ids):
        await receive_until(ws, "caught_up")

    p_task = await append_one("task.completed", executionid="e1")
    await append_one("timer.fired")
    p_wf = await append_one("workflow.created", workflowid="w1")
    await append_one("workflow.deleted", workflowid="w9")
    p_both = await append_one("workflow.other", workflowid="w2", executionid="e2")

    assert [e["position"] for e in await receive_events(ws_types, 2)] == [p_task, p_wf]
    assert [e["position"] for e in await receive_events(ws_stream, 1)] == [p_task]
    category = await receive_events(ws_category, 2)
    assert [e["position"] for e in category] == [p_wf, p_wf + 1]
    assert [e["position"] for e in await receive_events(ws_ids, 1)] == [p_both]
    # Nothing else arrives once the last event has been seen by every feed.
    for ws in (ws_types, ws_stream, ws_category, ws_ids):
        assert await ws.receive_nothing(0.05)
        await ws.disconnect()


async def test_filter_change_applies_from_the_cursor_and_from_rewinds(tailer, token_for):
    ws = await connect("/ws/events?types=a.*", await token_for())
    await receive_until(ws, "caught_up")
    a1 = await append_one("a.one")
    assert [e["position"] for e in await receive_events(ws, 1)] == [a1]

    await ws.send_json_to({"type": "filter", "types": ["b.*"]})
    subscribed = await ws.receive_json_from(timeout=60)
    assert subscribed == {"type": "subscribed", "position": a1, "filter": {"types": ["b.*"]}}
    await receive_until(ws, "caught_up")
    await append_one("a.two")
    b1 = await append_one("b.one")
    assert [e["position"] for e in await receive_events(ws, 1)] == [b1]

    await ws.send_json_to({"type": "filter", "types": "a.*", "from": "beginning"})
    messages = await receive_until(ws, "caught_up")
    assert messages[0]["type"] == "subscribed" and messages[0]["position"] == 0
    assert [m["type"] for m in messages if "specversion" in m] == ["a.one", "a.two"]
    await ws.disconnect()


async def test_ping_pong_and_ack(tailer, token_for):
    ws = await connect("/ws/events?from=beginning", await token_for())
    position = await append_one()
    await receive_until(ws, "caught_up")
    await receive_events(ws, 0)
    await wait_for(lambda: tailer.cursor is not None and tailer.cursor >= position)
    await ws.send_json_to({"type": "ack", "position": position})
    await ws.send_json_to({"type": "ping", "id": "p1"})
    # the event may come live or in the catch-up: skip it either way
    while True:
        message = await ws.receive_json_from(timeout=60)
        if message.get("type") == "pong":
            break
    assert message == {"type": "pong", "position": position, "acked": position, "id": "p1"}

    await ws.send_json_to({"type": "ack", "position": position + 100})
    error = await ws.receive_json_from(timeout=60)
    assert error["type"] == "error" and "beyond the last position sent" in error["message"]
    await ws.disconnect()


async def test_a_tenant_bound_token_sees_only_its_tenant(tailer, token_for):
    token = await token_for(["events:read"], tenant="acme")
    ws = await connect("/ws/events", token)
    subscribed, _ = await receive_until(ws, "caught_up")
    assert subscribed["filter"] == {"tenantid": "acme"}
    await append_one("task.x", tenantid="other")
    mine = await append_one("task.x", tenantid="acme")
    await append_one("task.x")
    assert [e["position"] for e in await receive_events(ws, 1)] == [mine]

    # Changing the filter cannot escape the tenant either.
    await ws.send_json_to({"type": "filter", "tenantid": "other"})
    error = await ws.receive_json_from(timeout=60)
    assert (error["type"], error["error"]) == ("error", "forbidden_tenant")
    await ws.disconnect()


async def test_live_events_are_rendered_exactly_as_the_rest_api_renders_them(tailer, token_for, api):
    from live import db

    ws = await connect("/ws/events", await token_for())
    await receive_until(ws, "caught_up")
    position = await append_one(
        "task.rendered",
        subject="s-1",
        time="2026-01-31T12:00:00.123456789+02:00",
        tenantid="t",
        workflowid="w",
        correlationid="c",
        myext="kept",
        data={"nested": {"list": [1, 2.5, None, "x"]}, "unicode": "é✓"},
    )
    [live] = await receive_events(ws, 1)
    response = await db.run(api.get, f"/api/v1/events/{live['id']}")
    assert live == response.json() and live["position"] == position
    await ws.disconnect()


async def test_connected_feeds_are_counted_for_metrics(tailer, token_for):
    from live.tailer import connected_clients

    before = connected_clients()
    ws = await connect("/ws/events", await token_for())
    await receive_until(ws, "caught_up")
    assert connected_clients() == before + 1
    await ws.disconnect()
    await wait_for(lambda: connected_clients() == before)
