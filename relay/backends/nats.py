"""NATS JetStream backend (nats-py): structured CloudEvents, ``Nats-Msg-Id`` = event id.

Features
    - Subject ``<NATS_SUBJECT_PREFIX>.<type>`` (default ``flunq.events.task.completed``); characters
      a subject cannot hold (space, ``*``, ``>``, empty tokens) become ``_``.
    - Payload: the CloudEvent in JSON (``application/cloudevents+json``, the structured mode of the
      NATS binding), server attributes included; header ``Content-Type`` says so.
    - Header ``Nats-Msg-Id`` = ``<source> <id>`` hashed to hex, so JetStream drops a re-send inside
      the stream's duplicate window (2 minutes by default) — the event id for dedupe.
    - JetStream stream ``NATS_STREAM`` (default ``FLUNQ_EVENTS``) over ``<prefix>.>`` is created at
      connect when missing; an existing one is used as it is (limits, replicas and retention are
      the operator's), and must capture the prefix's subjects.
    - A batch is published asynchronously, in order, on one connection; the relay waits for every
      PubAck.

Connection string
    ``NATS_URL``: ``nats://host:4222`` (``tls://`` for TLS), credentials file ``NATS_CREDS``,
    TLS CA ``NATS_TLS_CAFILE``.

nats-py is asyncio; the relay is not. The backend runs its client on a private event loop in a
thread and waits on it with a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import ssl
import threading
from collections.abc import Sequence

import nats
import nats.errors
import nats.js.errors
from django.conf import settings

from relay.backends.base import Backend, BrokerUnavailable, EventRejected
from relay.messages import RelayEvent

_NOT_IN_SUBJECT = re.compile(r"[\s*>]")
# JetStream API error codes that refuse one message for good (message too large).
_PERMANENT_CODES = {10054}


def subject_for(prefix: str, event_type: str) -> str:
    tokens = [_NOT_IN_SUBJECT.sub("_", token) or "_" for token in event_type.split(".")]
    return f"{prefix}.{'.'.join(tokens)}"


def msg_id(event: RelayEvent) -> str:
    # An id alone is unique only per source (CloudEvents), and headers must stay short and printable.
    return hashlib.sha256(f"{event.source}\x00{event.id}".encode()).hexdigest()[:32]


class NatsBackend(Backend):
    alias = "nats"
    reads_binary = False

    def __init__(
        self,
        url: str | None = None,
        stream: str | None = None,
        prefix: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.url = url or settings.NATS_URL
        self.stream = stream or settings.NATS_STREAM
        self.prefix = prefix or settings.NATS_SUBJECT_PREFIX
        self.timeout = timeout or settings.RELAY_ACK_TIMEOUT_SECONDS
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.nc = None
        self.js = None
        self.subjects: dict[str, str] = {}

    def _run(self, coroutine, timeout: float | None = None):
        assert self.loop is not None
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout or self.timeout)
        except TimeoutError as exc:
            future.cancel()
            raise BrokerUnavailable("nats: no answer in time") from exc

    def connect(self) -> None:
        if self.nc is not None:
            return
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
            self.thread = threading.Thread(target=self.loop.run_forever, name="relay-nats", daemon=True)
            self.thread.start()
        try:
            self._run(self._connect(), timeout=self.timeout * 2)
        except (nats.errors.Error, OSError) as exc:
            self.close()
            raise BrokerUnavailable(f"nats: {exc!r}") from exc
        except BrokerUnavailable:
            self.close()
            raise

    async def _connect(self) -> None:
        options: dict = {
            "servers": [self.url],
            "connect_timeout": self.timeout,
            # The relay reconnects itself (closing this client) after backing off.
            "allow_reconnect": False,
            "max_reconnect_attempts": 0,
        }
        if settings.NATS_CREDS:
            options["user_credentials"] = settings.NATS_CREDS
        if settings.NATS_TLS_CAFILE:
            options["tls"] = ssl.create_default_context(cafile=settings.NATS_TLS_CAFILE)

        async def ignore(*args):  # nats-py logs errors to stderr without a callback
            pass

        self.nc = await nats.connect(**options, error_cb=ignore)
        self.js = self.nc.jetstream(timeout=self.timeout)
        subjects = f"{self.prefix}.>"
        try:
            info = await self.js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            await self.js.add_stream(name=self.stream, subjects=[subjects])
            return
        if subjects not in (info.config.subjects or []):
            raise BrokerUnavailable(
                f"nats: stream {self.stream} does not capture {subjects} (it has {info.config.subjects})"
            )

    async def _publish(self, events: Sequence[RelayEvent]) -> list[EventRejected | None]:
        pending: list = []
        subjects = self.subjects
        for event in events:
            if (subject := subjects.get(event.type)) is None:
                subject = subjects[event.type] = subject_for(self.prefix, event.type)
            try:
                pending.append(
                    await self.js.publish_async(
                        subject,
                        event.structured(),
                        headers={
                            "Nats-Msg-Id": msg_id(event),
                            "Content-Type": "application/cloudevents+json",
                        },
                    )
                )
            except nats.errors.MaxPayloadError as exc:  # refused before sending: over max_payload
                pending.append(EventRejected(f"nats: {exc!r}"))
        done = await asyncio.gather(
            *(item for item in pending if not isinstance(item, EventRejected)), return_exceptions=True
        )
        outcomes = iter(done)
        results: list[EventRejected | None] = []
        for item in pending:
            outcome = item if isinstance(item, EventRejected) else next(outcomes)
            if isinstance(outcome, EventRejected):
                results.append(outcome)
            elif isinstance(outcome, nats.js.errors.APIError) and outcome.err_code in _PERMANENT_CODES:
                results.append(EventRejected(f"nats: {outcome}"))
            elif isinstance(outcome, BaseException):
                raise BrokerUnavailable(f"nats: {outcome!r}")
            else:
                results.append(None)
        return results

    def publish(self, events: Sequence[RelayEvent]) -> list[EventRejected | None]:
        if self.nc is None or not self.nc.is_connected:
            raise BrokerUnavailable("nats: not connected")
        try:
            return self._run(self._publish(events))
        except (nats.errors.Error, OSError) as exc:
            raise BrokerUnavailable(f"nats: {exc!r}") from exc

    def close(self) -> None:
        if self.nc is not None and self.loop is not None:
            with contextlib.suppress(Exception):
                self._run(self.nc.close(), timeout=2)
        self.nc = self.js = None
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            if self.thread is not None:
                self.thread.join(5)
            self.loop.close()
            self.loop = self.thread = None

    def describe(self) -> dict[str, str]:
        return {"broker": "nats", "stream": self.stream, "subjects": f"{self.prefix}.>"}
