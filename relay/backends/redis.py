"""Redis Streams backend (redis-py): one stream entry per event, ``XADD`` with ``MAXLEN ~``.

Features
    - One entry per event in the stream ``REDIS_STREAM`` (default ``flunq:events``); its fields are
      the CloudEvent's attributes as text (``id``, ``source``, ``type``, ..., ``stream``,
      ``version``, ``position``, ``recordedtime``) plus ``data``, the data bytes as stored (JSON
      text, or the raw bytes of ``data_base64``; ``datacontenttype`` says which).
    - The entry id is ``<position>-0``, so ``XRANGE flunq:events 1000 2000`` reads positions 1000 to
      2000, and re-sending an event after a crash is refused by Redis itself (an id must be above the
      stream's last one): a re-send is counted as acknowledged, never stored twice.
    - A rewind therefore adds nothing to Redis (its entries are there); consumers replay with
      ``XGROUP SETID`` or ``XRANGE`` from a position instead.
    - ``XADD ... MAXLEN ~ REDIS_STREAM_MAXLEN`` keeps the stream bounded (0: unbounded); a batch is
      one pipeline, one round trip.

Connection string
    ``REDIS_URL``: ``redis://[user:password@]host:6379/0``, ``rediss://`` for TLS, ``unix://``.

Acks
    The XADD reply: the entry is in the primary's memory (and its AOF, as configured). Use Redis
    persistence (``appendonly yes``) if the stream must survive a Redis restart.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis
from django.conf import settings

from relay.backends.base import Backend, BrokerUnavailable, EventRejected
from relay.messages import RelayEvent

# Redis refuses an id at or below the stream's last id with this message: the event is there.
_ALREADY_THERE = "equal or smaller than the target stream top item"


class RedisBackend(Backend):
    alias = "redis"
    reads_structured = False

    def __init__(
        self,
        url: str | None = None,
        stream: str | None = None,
        maxlen: int | None = None,
        timeout: float | None = None,
    ) -> None:
        self.url = url or settings.REDIS_URL
        self.stream = stream or settings.REDIS_STREAM
        self.maxlen = settings.REDIS_STREAM_MAXLEN if maxlen is None else maxlen
        self.timeout = timeout or settings.RELAY_ACK_TIMEOUT_SECONDS
        self.client: redis.Redis | None = None

    def connect(self) -> None:
        if self.client is not None:
            return
        client = redis.Redis.from_url(
            self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout
        )
        try:
            client.ping()
        except redis.RedisError as exc:
            client.close()
            raise BrokerUnavailable(f"redis: {exc}") from exc
        self.client = client

    def publish(self, events: Sequence[RelayEvent]) -> list[EventRejected | None]:
        if self.client is None:
            raise BrokerUnavailable("redis: not connected")
        pipe = self.client.pipeline(transaction=False)
        # XADD key [MAXLEN ~ n] id field value ...: what ``xadd`` builds, without a dict per event.
        command = ("XADD", self.stream, "MAXLEN", "~", self.maxlen) if self.maxlen else ("XADD", self.stream)
        for event in events:
            if event.data is None:
                pipe.execute_command(*command, f"{event.position}-0", *event.fields)
            else:
                pipe.execute_command(*command, f"{event.position}-0", *event.fields, "data", event.data)
        try:
            replies = pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"redis: {exc}") from exc
        results: list[EventRejected | None] = []
        for reply in replies:
            if isinstance(reply, redis.ResponseError) and _ALREADY_THERE not in str(reply):
                # OOM, WRONGTYPE, READONLY replica, ...: about the server, not this event.
                raise BrokerUnavailable(f"redis: {reply}")
            results.append(None)
        return results

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def describe(self) -> dict[str, str]:
        return {"broker": "redis", "stream": self.stream}
