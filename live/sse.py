"""Server-Sent Events: ``GET /api/v1/events/stream``, the websocket feed for plain HTTP clients.

Same filters and ``from`` as ``/ws/events``; ``Last-Event-ID`` (a position, which browsers' and
most clients' EventSource send on reconnect) takes precedence over ``from``. Auth:
``Authorization: Bearer`` or ``?ticket=`` (EventSource cannot set headers). Each event is

    id: <position>
    data: <CloudEvent JSON>

and control messages are named events (``event: subscribed|caught_up|heartbeat|resync``) with an
``id:`` of the feed's position, so a reconnect resumes after whatever the filter skipped too.
After ``resync`` the server ends the response; the client reconnects with ``Last-Event-ID``.

The view is async and reads the log through ``live.db`` in autocommit: no transaction stays open
while the response streams. Errors before the stream starts are JSON bodies with a 4xx status.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from access.tenancy import scope_filter
from flunq_events.api import allow_methods
from flunq_events.errors import InvalidRequest, ServiceError
from flunq_events.numbers import is_digits
from live import db
from live.auth import authenticate
from live.feed import Feed
from live.query import parse_query, parse_start

RETRY_MS = 2000


@allow_methods("GET")
async def event_stream(request: HttpRequest) -> HttpResponse:
    try:
        values = dict(request.GET.lists())
        tickets = values.get("ticket", [])
        if len(tickets) > 1:
            raise InvalidRequest("ticket may be given once", parameter="ticket")
        principal = await db.run(
            authenticate, request.headers.get("Authorization"), tickets[0] if tickets else None
        )
        filter_, start = parse_query(values, extra=("ticket",))
        last_event_id = request.headers.get("Last-Event-ID")
        if last_event_id is not None and last_event_id.strip():
            if not is_digits(last_event_id.strip()):
                raise InvalidRequest(
                    f"Last-Event-ID must be a position (an integer >= 0), got {last_event_id[:40]!r}",
                    header="Last-Event-ID",
                )
            start = parse_start(last_event_id, "Last-Event-ID")
        scope_filter(principal, filter_)
    except ServiceError as error:
        response = JsonResponse(error.as_dict(), status=error.http_status)
        if error.http_status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="flunq"'
        return response
    feed = Feed(filter_, start)
    response = StreamingHttpResponse(_frames(feed), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # proxies must not buffer a stream
    return response


async def _frames(feed: Feed) -> AsyncIterator[bytes]:
    yield f"retry: {RETRY_MS}\n\n".encode()
    async for item in feed.items():
        if item.kind == "events":
            yield b"".join(b"id: %d\ndata: %s\n\n" % (e.position, e.text.encode()) for e in item.events)
            continue
        message = item.control(filter=feed.description) if item.kind == "subscribed" else item.control()
        yield b"id: %d\nevent: %s\ndata: %s\n\n" % (item.position, item.kind.encode(), orjson.dumps(message))
