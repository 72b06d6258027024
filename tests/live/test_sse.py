"""Server-Sent Events: the same feed over plain HTTP, resumable with Last-Event-ID."""

from __future__ import annotations

import orjson
import pytest
from django.test import Client

from tests.live.conftest import append_one
from tests.live.sse_client import SSE

pytestmark = pytest.mark.django_db(transaction=True)
PATH = "/api/v1/events/stream"


def bearer(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {token}".encode())]


async def test_catch_up_live_and_resume_with_last_event_id(tailer, token_for):
    token = await token_for()
    one = await append_one("task.one")
    two = await append_one("task.two")
    stream = SSE(PATH, "from=beginning&types=task.*", bearer(token))
    assert await stream.start() == 200
    assert stream.headers[b"content-type"].startswith(b"text/event-stream")
    frames = await stream.frames_until("caught_up")
    assert frames[0]["event"] == "subscribed" and frames[0]["data"]["filter"] == {"types": ["task.*"]}
    events = [f for f in frames if f["event"] == "message"]
    assert [(f["id"], f["data"]["type"]) for f in events] == [(str(one), "task.one"), (str(two), "task.two")]
    await append_one("other.skipped")
    three = await append_one("task.three")
    [live] = await stream.events(1)
    assert (live["id"], live["data"]["position"]) == (str(three), three)
    await stream.close()

    resumed = SSE(PATH, "from=now&types=task.*", [*bearer(token), (b"last-event-id", str(one).encode())])
    assert await resumed.start() == 200
    assert [f["data"]["position"] for f in await resumed.events(2)] == [two, three]
    await resumed.close()


async def test_bad_requests_are_json_errors(tailer, token_for):
    token, tenant_token = await token_for(), await token_for(tenant="acme")
    for query, headers, status, needle in [
        ("colour=red", bearer(token), 400, "unknown parameter(s): colour"),
        ("from=tomorrow", bearer(token), 400, "from must be a position"),
        ("", [*bearer(token), (b"last-event-id", b"abc")], 400, "Last-Event-ID must be a position"),
        # digits to str.isdigit, not to int: superscript two (percent-encoded, and as a latin-1 byte)
        ("from=%C2%B2", bearer(token), 400, "from must be a position"),
        ("", [*bearer(token), (b"last-event-id", b"\xb2")], 400, "Last-Event-ID must be a position"),
        ("ticket=a&ticket=b", [], 400, "ticket may be given once"),
        ("tenantid=x", bearer(tenant_token), 403, "reads events of tenant 'acme' only"),
    ]:
        stream = SSE(PATH, query, headers)
        assert await stream.start() == status, query
        body = orjson.loads(await stream.body())
        assert needle in body["message"], (query, body)


async def test_authentication_is_required(tailer, token_for):
    stream = SSE(PATH)
    assert await stream.start() == 401
    assert stream.headers[b"www-authenticate"] == b'Bearer realm="flunq"'
    assert orjson.loads(await stream.body())["error"] == "unauthenticated"
    stream = SSE(PATH, headers=bearer(await token_for(["events:write"])))
    assert await stream.start() == 403


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_only_get_is_allowed(method):
    client = Client(enforce_csrf_checks=True)  # as a real server: no CSRF page before the 405
    response = getattr(client, method)(PATH)
    assert response.status_code == 405 and response.json()["error"] == "method_not_allowed"
    assert response["Allow"] == "GET"
