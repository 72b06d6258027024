"""Bad handshakes and bad client messages: a clear error and close code; other clients unaffected."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from live import db
from live.models import WsTicket
from tests.live.conftest import append_one, connect, receive_events, receive_until

pytestmark = pytest.mark.django_db(transaction=True)


async def refused(path: str, token: str | None = None, headers=()) -> tuple[dict, dict]:
    ws = await connect(path, token, headers)
    error = await ws.receive_json_from(timeout=30)
    close = await ws.receive_output(timeout=30)
    assert close["type"] == "websocket.close"
    return error, close


BAD_QUERIES = [
    ("colour=red", "unknown parameter(s): colour"),
    ("type=task.x", "unknown parameter(s): type"),
    ("from=yesterday", "from must be a position"),
    ("from=-5", "from must be a position"),
    ("from=99999999999999999999", "beyond the largest position"),
    ("from=1&from=2", "from may be given once"),
    ("stream=a&stream=b", "stream may be given once"),
    ("types=ta*sk", "wildcard is allowed only at the end"),
    ("source=", "source must be 1 to 2048 characters"),
    ("types=,", "types: no type in ','"),  # from an empty list: it meant every type
    ("types=%20,%20", "types: no type"),
]


async def test_bad_queries_close_with_4400_and_say_why(tailer, token_for):
    token = await token_for()
    for query, needle in BAD_QUERIES:
        error, close = await refused(f"/ws/events?{query}", token)
        assert error["type"] == "error" and error["error"] == "invalid_request", query
        assert needle in error["message"], (query, error)
        assert close["code"] == 4400 and close["reason"], query


async def test_stream_route_refuses_a_name_no_stream_can_have(tailer, token_for):
    error, close = await refused("/ws/streams/a%0Ab", await token_for())
    assert "stream name" in error["message"] and close["code"] == 4400


@pytest.mark.parametrize("path", ["/ws/nope", "/ws/events/", "/ws/streams/", "/", "/ws/events/x"])
async def test_a_path_with_no_feed_is_refused_with_4404(tailer, token_for, path):
    """Channels' router raised for them: an HTTP 500 at the handshake and a traceback."""
    error, close = await refused(path, await token_for())
    assert (error["error"], close["code"]) == ("not_found", 4404) and "/ws/events" in error["message"]


async def test_a_stream_name_with_a_slash_is_one_no_stream_can_have(tailer, token_for):
    error, close = await refused("/ws/streams/a%2Fb", await token_for())
    assert "stream name" in error["message"] and close["code"] == 4400


async def test_stream_route_refuses_a_stream_parameter(tailer, token_for):
    error, close = await refused("/ws/streams/task?stream=other", await token_for())
    assert "given by the path" in error["message"] and close["code"] == 4400


async def test_tokens_and_tickets_are_checked(tailer, token_for, make_token):
    error, close = await refused("/ws/events")
    assert (error["error"], close["code"]) == ("unauthenticated", 4401)
    error, close = await refused("/ws/events", "flq_not-a-token")
    assert (error["error"], close["code"]) == ("unauthenticated", 4401)
    error, close = await refused("/ws/events", headers=[(b"authorization", b"Basic dXNlcjpwdw==")])
    assert "Bearer" in error["message"] and close["code"] == 4401
    error, close = await refused("/ws/events", await token_for(["events:write"]))
    assert (error["error"], close["code"]) == ("forbidden", 4403)
    error, close = await refused("/ws/events?ticket=flqt_forged")
    assert (error["error"], close["code"]) == ("unauthenticated", 4401)
    error, close = await refused("/ws/events?tenantid=other", await token_for(tenant="acme"))
    assert (error["error"], close["code"]) == ("forbidden_tenant", 4403)


async def test_a_ticket_works_once_and_not_after_it_expires(tailer, token_for):
    from access.principal import Principal
    from live import tickets

    principal = Principal("reader", frozenset({"events:read"}), tenant=None)
    ticket, _ = await db.run(tickets.issue, principal)
    ws = await connect(f"/ws/events?ticket={ticket}")
    assert (await ws.receive_json_from(timeout=30))["type"] == "subscribed"
    await ws.disconnect()
    error, close = await refused(f"/ws/events?ticket={ticket}")
    assert "unknown, used or expired ticket" in error["message"] and close["code"] == 4401

    stale, _ = await db.run(tickets.issue, principal)
    await db.run(lambda: WsTicket.objects.update(expires_at=timezone.now() - timedelta(seconds=1)))
    error, close = await refused(f"/ws/events?ticket={stale}")
    assert close["code"] == 4401


async def test_bad_messages_get_errors_and_the_feed_goes_on(tailer, token_for):
    token = await token_for()
    ws = await connect("/ws/events", token)
    await receive_until(ws, "caught_up")
    for text, needle in [
        ("not json", "not valid JSON"),
        ("[1, 2]", 'a JSON object with a "type"'),
        ('{"type": "subscribe"}', "unknown message type 'subscribe'"),
        ('{"type": "ack", "position": "7"}', "ack needs an integer position"),
        ('{"type": "ping", "extra": 1}', "unknown field(s) in a ping message: extra"),
        ('{"type": "filter", "colour": "red"}', "unknown field(s) in a filter message: colour"),
        ('{"type": "filter", "from": "soon"}', "from must be a position"),
        ('{"type": "ack", "position": NaN}', "not valid JSON"),
    ]:
        await ws.send_to(text_data=text)
        error = await ws.receive_json_from(timeout=30)
        assert error["type"] == "error" and needle in error["message"], (text, error)
    position = await append_one("task.after-errors")
    assert [e["position"] for e in await receive_events(ws, 1)] == [position]
    await ws.disconnect()


async def test_oversized_and_binary_messages_close_only_that_client(tailer, token_for, settings):
    token = await token_for()
    bystander = await connect("/ws/events", token)
    await receive_until(bystander, "caught_up")

    big = await connect("/ws/events", token)
    await receive_until(big, "caught_up")
    await big.send_to(
        text_data='{"type": "ping", "id": "' + "x" * settings.LIVE_MAX_CLIENT_MESSAGE_BYTES + '"}'
    )
    error = await big.receive_json_from(timeout=30)
    assert error["error"] == "message_too_big"
    assert (await big.receive_output(timeout=30))["code"] == 1009

    binary = await connect("/ws/events", token)
    await receive_until(binary, "caught_up")
    await binary.send_to(bytes_data=b"\x00\x01")
    assert (await binary.receive_json_from(timeout=30))["error"] == "unsupported_data"
    assert (await binary.receive_output(timeout=30))["code"] == 1003

    # Nothing more goes to a client after the close (a server refuses a send after it): not the
    # answer to a message the client sent before it saw the close, not the feed's next events.
    for closed in (big, binary):
        await closed.send_to(text_data='{"type": "ping"}')
    position = await append_one("task.still-served")
    assert [e["position"] for e in await receive_events(bystander, 1)] == [position]
    for closed in (big, binary):
        assert await closed.receive_nothing(timeout=0.5)
    await bystander.disconnect()
