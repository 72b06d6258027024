"""Websocket feeds: ``/ws/events`` and ``/ws/streams/{stream}`` (protocol: docs/live.md).

The handshake is accepted first, so that a refusal reaches browsers too: a bad token, ticket,
filter or ``from`` is answered with ``{"type": "error", ...}`` and a close code of 4000 + the HTTP
status it would have had (4400, 4401, 4403). Then the feed runs in its own task
(``live.feed.Feed``) while ``receive`` handles the client's messages:

    {"type": "filter", "types": ["task.*"], "stream": "...", "from": 42}   new filter (and start)
    {"type": "ack", "position": 42}                                        progress, echoed in pong
    {"type": "ping"}                                        -> {"type": "pong", "position": ..., ...}

A malformed message gets an error message and the feed goes on; a binary frame closes with 1003,
a message over LIVE_MAX_CLIENT_MESSAGE_BYTES with 1009. A client that falls LIVE_CLIENT_BUFFER
events behind gets ``{"type": "resync", "position": N}`` and close code 4100: reconnecting with
``from=N`` loses and repeats nothing.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from typing import Any
from urllib.parse import parse_qs

import orjson
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from access.principal import Principal
from access.tenancy import scope_filter
from flunq_events.errors import InvalidRequest, NotFound, ServiceError
from flunq_events.jsonutil import JSONError, loads_strict
from live import db
from live.auth import authenticate
from live.feed import Feed, Item
from live.query import FILTERS, START, parse_filter, parse_query, parse_start
from live.wire import FrameWriter

logger = logging.getLogger(__name__)

CLOSE_RESYNC = 4100
CLOSE_UNSUPPORTED = 1003
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011


def close_code(error: ServiceError) -> int:
    return 4000 + error.http_status


class EventsConsumer(AsyncWebsocketConsumer):
    """One websocket client: its feed task and its control messages."""

    feed: Feed | None = None
    principal: Principal | None = None
    acked: int | None = None
    _task: asyncio.Task | None = None
    _writer: FrameWriter | None = None
    # Set by close(): the server may send nothing after websocket.close, but client messages sent
    # before the client saw it still arrive, and the feed task may have a batch in hand.
    _closed: bool = False

    async def connect(self) -> None:
        await self.accept()
        values = parse_qs(self.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        try:
            tickets = values.get("ticket", [])
            if len(tickets) > 1:
                raise InvalidRequest("ticket may be given once", parameter="ticket")
            authorization = self._header(b"authorization")
            self.principal = await db.run(authenticate, authorization, tickets[0] if tickets else None)
            stream = self.scope.get("url_route", {}).get("kwargs", {}).get("stream")
            filter_, start = parse_query(values, stream=stream, extra=("ticket",))
            scope_filter(self.principal, filter_)
        except ServiceError as error:
            await self.refuse(error)
            return
        except Exception:
            logger.exception("live feed handshake failed")
            await self.send_json({"type": "error", "error": "unavailable", "message": "try again later"})
            await self.close(code=CLOSE_INTERNAL, reason="the service is unavailable")
            return
        self.feed = Feed(filter_, start)
        self._writer = FrameWriter.for_send(self.base_send)
        self._task = asyncio.get_running_loop().create_task(self._deliver())

    async def close(self, code=None, reason=None) -> None:
        if self._closed:
            return
        self._closed = True
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        await super().close(code=code, reason=reason)

    async def disconnect(self, code: int) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    # --- server -> client ------------------------------------------------------------------------

    async def _deliver(self) -> None:
        try:
            async for item in self.feed.items():
                await self._send_item(item)
                if item.kind == "resync":
                    await self.close(code=CLOSE_RESYNC, reason=f"resync from position {item.position}")
                    return
        except asyncio.CancelledError:
            raise
        except OSError:
            return  # the client went away in the middle of a send
        except Exception:
            logger.exception("live feed failed")
            with suppress(Exception):
                await self.send_json(
                    {"type": "error", "error": "internal_error", "message": "the feed failed; reconnect"}
                )
                await self.close(code=CLOSE_INTERNAL, reason="internal error")

    async def _send_item(self, item: Item) -> None:
        if self._closed:
            return
        if item.kind == "events":
            if self._writer is not None:
                # Every event's frame, encoded once per process, in one write (live.wire).
                await self._writer.write(b"".join([live.frame for live in item.events]))
                return
            # Straight to the server (Channels' send only wraps this): one call per event.
            for live in item.events:
                await self.base_send({"type": "websocket.send", "text": live.text})
        elif item.kind == "subscribed":
            await self.send_json(item.control(filter=self.feed.description))
        else:
            await self.send_json(item.control())

    async def send_json(self, message: dict[str, Any]) -> None:
        if not self._closed:
            await self.send(text_data=orjson.dumps(message).decode())

    async def refuse(self, error: ServiceError) -> None:
        """Tell the client what is wrong, then close with 4000 + the HTTP status."""
        await self.send_json({"type": "error", **error.as_dict()})
        await self.close(code=close_code(error), reason=_reason(error.message))

    # --- client -> server ------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.feed is None or self._closed:
            return  # refused at connect, or closed since: the close is on its way
        if text_data is None:
            await self.send_json(
                {"type": "error", "error": "unsupported_data", "message": "binary frames are not supported"}
            )
            await self.close(code=CLOSE_UNSUPPORTED, reason="binary frames are not supported")
            return
        limit = settings.LIVE_MAX_CLIENT_MESSAGE_BYTES
        if len(text_data) > limit or len(text_data.encode()) > limit:
            message = f"a client message may have at most {limit} bytes"
            await self.send_json(
                {"type": "error", "error": "message_too_big", "message": message, "limit": limit}
            )
            await self.close(code=CLOSE_TOO_BIG, reason=message)
            return
        try:
            await self.handle(self.parse(text_data))
        except ServiceError as error:
            await self.send_json({"type": "error", **error.as_dict()})

    @staticmethod
    def parse(text: str) -> dict[str, Any]:
        try:
            message = loads_strict(text.encode(), max_depth=8)
        except JSONError as exc:
            raise InvalidRequest(f"the message is not valid JSON: {exc}") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise InvalidRequest('a message is a JSON object with a "type": filter, ack or ping')
        return message

    async def handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "ping":
            self._only(message, ("type", "id"))
            reply = {"type": "pong", "position": self.feed.cursor, "acked": self.acked}
            if "id" in message:
                reply["id"] = message["id"]
            await self.send_json(reply)
        elif kind == "ack":
            self._only(message, ("type", "position"))
            position = message.get("position")
            if not isinstance(position, int) or isinstance(position, bool) or position < 0:
                raise InvalidRequest("ack needs an integer position >= 0", field="position")
            if self.feed.cursor is not None and position > self.feed.cursor:
                raise InvalidRequest(
                    f"ack of position {position}, beyond the last position sent ({self.feed.cursor})",
                    field="position",
                )
            self.acked = max(self.acked or 0, position)
        elif kind == "filter":
            self._only(message, ("type", *FILTERS, START))
            values = {name: _as_list(value) for name, value in message.items() if name in FILTERS}
            stream = self.scope.get("url_route", {}).get("kwargs", {}).get("stream")
            filter_ = scope_filter(self.principal, parse_filter(values, stream=stream))
            start = parse_start(message[START]) if START in message else None
            self.feed.change(filter_, start)
        else:
            raise InvalidRequest(
                f"unknown message type {kind[:40]!r}; expected filter, ack or ping", field="type"
            )

    @staticmethod
    def _only(message: dict[str, Any], allowed: tuple[str, ...]) -> None:
        unknown = sorted(set(message) - set(allowed))
        if unknown:
            raise InvalidRequest(
                f"unknown field(s) in a {message['type']} message: {', '.join(unknown[:10])}",
                unknown=unknown[:10],
                allowed=list(allowed),
            )

    def _header(self, name: bytes) -> str | None:
        for key, value in self.scope.get("headers", ()):
            if key == name:
                return value.decode("latin-1")
        return None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _reason(message: str) -> str:
    # A close frame's reason is at most 123 bytes of UTF-8.
    encoded = message.encode()
    return message if len(encoded) <= 123 else encoded[:120].decode(errors="ignore") + "..."


class NoSuchFeed(EventsConsumer):
    """Any other websocket path: refused as the feeds refuse (4404), where Channels' router raised
    (an HTTP 500 at the handshake, with a traceback in the log)."""

    async def connect(self) -> None:
        await self.accept()
        path = self.scope.get("path", "")
        await self.refuse(
            NotFound(f"no live feed at {path[:100]!r}: the feeds are /ws/events and /ws/streams/{{stream}}")
        )
