"""Send one event to a webhook: a signed CloudEvents POST to a checked address, and what came of it.

The request is a structured-mode CloudEvent (``application/cloudevents+json``) signed per the
Standard Webhooks spec with the ``standardwebhooks`` package: ``webhook-id`` (stable across
retries of the same message), ``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256>``
over ``{id}.{timestamp}.{body}`` with the subscription's ``whsec_`` secret.

The connection goes to the address ``ssrf.check_url`` approved (the URL's host is sent as ``Host``
and as TLS SNI, and the certificate is verified against it), redirects are not followed, proxies
from the environment are ignored, and ``WEBHOOK_TIMEOUT_SECONDS`` bounds the whole attempt, from
the connection to the last byte read: every read, write and connect of the attempt waits at most
what is left of it, so a receiver that trickles its headers or body a byte at a time holds a worker
thread no longer than that (``_DeadlineBackend``). Of the response's body at
most ``MAX_ERROR_BYTES`` are read for the error of a failed attempt, and ``MAX_DRAINED_BYTES`` of
a 2xx's: a receiver that trickles or streams its body holds neither a worker thread nor its memory.

``Outcome.kind`` tells the delivery loop what to do: ``ok`` (2xx), ``gone`` (410: disable the
subscription), ``retry`` (anything else; ``retry_after`` set from a 429/503 ``Retry-After``).
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpcore
import httpx
import orjson
from django.conf import settings
from standardwebhooks import Webhook

from flunq_events.numbers import is_digits
from subscriptions.ssrf import UnsafeURL, check_url

USER_AGENT = "flunq-events-webhooks/1"
CONTENT_TYPE = "application/cloudevents+json"
MAX_RETRY_AFTER = 24 * 3600.0
MAX_ERROR_BYTES = 200  # of a failed attempt's body, kept as its error
MAX_DRAINED_BYTES = 64 * 1024  # of a 2xx's body, read only to keep the connection


def encode(event: dict) -> bytes:
    """The CloudEvent as JSON (``data`` read from the store passes through as a fragment)."""
    return orjson.dumps(event, option=orjson.OPT_UTC_Z)


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks form ``whsec_<base64 of 32 random bytes>``."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str  # ok | gone | retry
    status: int | None = None
    error: str = ""
    retry_after: float | None = None


def signed_headers(secret: str, message_id: str, body: str, now: datetime | None = None) -> dict[str, str]:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    signature = Webhook(secret).sign(message_id, moment, body)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
    }


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), capped at a day."""
    if not value:
        return None
    value = value.strip()
    if is_digits(value):
        return min(float(value), MAX_RETRY_AFTER)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):  # Overflow: a year of 20 digits
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = (moment - (now or datetime.now(UTC))).total_seconds()
    return min(max(delta, 0.0), MAX_RETRY_AFTER)


# When the attempt on this thread must end (time.monotonic()); set by ``send``.
_attempt = threading.local()


def _left(timeout: float | None, late: type[httpcore.TimeoutException]) -> float | None:
    """``timeout`` for one network step, cut to what is left of the attempt on this thread."""
    ends = getattr(_attempt, "ends", None)
    if ends is None:
        return timeout
    left = ends - time.monotonic()
    if left <= 0:
        raise late(f"the attempt took longer than {settings.WEBHOOK_TIMEOUT_SECONDS}s")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write waits at most what is left of the attempt: httpx's
    timeouts are per step, so a receiver sending a byte just within each one could hold the
    attempt for hours."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname: str | None = None, timeout: float | None = None):
        return _DeadlineStream(
            self._stream.start_tls(ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout))
        )

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.SyncBackend):
    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        return _DeadlineStream(
            super().connect_tcp(
                host, port, _left(timeout, httpcore.ConnectTimeout), local_address, socket_options
            )
        )


def new_client() -> httpx.Client:
    # trust_env=False: an HTTP(S)_PROXY in the environment must not carry webhooks elsewhere.
    transport = httpx.HTTPTransport(trust_env=False)
    # httpx takes no network backend of its own; its connection pool (httpcore's) does.
    transport._pool._network_backend = _DeadlineBackend()
    return httpx.Client(
        transport=transport,
        follow_redirects=False,
        trust_env=False,
        timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
        headers={"user-agent": USER_AGENT},
    )


def send(client: httpx.Client, url: str, secret: str, message_id: str, body: bytes) -> Outcome:
    """POST ``body`` (one CloudEvent, JSON) to ``url``; never raises for network or HTTP errors."""
    try:
        target = check_url(url)
    except UnsafeURL as exc:
        return Outcome("retry", error=f"refused before connecting: {exc.message}")
    text = body.decode("utf-8")
    headers = {
        "content-type": CONTENT_TYPE,
        # The error kept is the body's first bytes as sent: no compressed answers (and no bombs).
        "accept-encoding": "identity",
        "host": target.host_header,
        **signed_headers(secret, message_id, text),
    }
    error = Outcome("retry", error="the host has no address to connect to")
    _attempt.ends = time.monotonic() + settings.WEBHOOK_TIMEOUT_SECONDS
    try:
        for address in target.addresses:
            try:
                with client.stream(
                    "POST",
                    target.connect_url(address),
                    content=body,
                    headers=headers,
                    extensions={"sni_hostname": target.host},
                ) as response:
                    return _outcome(response)
            except httpx.ConnectError as exc:
                # The next checked address of the same host may answer (IPv6 first, IPv4 listening).
                error = Outcome("retry", error=_printable(f"cannot connect to {address}: {exc}"))
            except httpx.TimeoutException as exc:
                return Outcome(
                    "retry", error=f"timeout after {settings.WEBHOOK_TIMEOUT_SECONDS}s: {type(exc).__name__}"
                )
            except httpx.HTTPError as exc:
                return Outcome("retry", error=_printable(f"{type(exc).__name__}: {exc}"))
        return error
    finally:
        _attempt.ends = None


def _outcome(response: httpx.Response) -> Outcome:
    status = response.status_code
    if 200 <= status < 300:
        _head(response, MAX_DRAINED_BYTES)  # read to its end, the connection is kept
        return Outcome("ok", status=status)
    if status == 410:
        return Outcome("gone", status=status, error="the receiver answered 410 Gone")
    if 300 <= status < 400:
        location = response.headers.get("location", "")[:200]
        return Outcome("retry", status=status, error=_printable(f"redirect to {location!r} not followed"))
    retry_after = parse_retry_after(response.headers.get("retry-after")) if status in (429, 503) else None
    snippet = _printable(_head(response).decode("utf-8", "replace"))
    return Outcome("retry", status=status, error=f"HTTP {status} {snippet}".strip(), retry_after=retry_after)


def _head(response: httpx.Response, limit: int = MAX_ERROR_BYTES) -> bytes:
    """The first ``limit`` bytes of the body as sent (not decompressed), or what came of them by
    the end of the attempt. A body read to its end leaves the connection for the next request; one
    cut short closes it."""
    data = b""
    try:
        for chunk in response.iter_raw():
            data += chunk
            if len(data) >= limit:
                break
    except httpx.HTTPError:
        pass  # the status says enough
    return data[:limit]


def _printable(text: str) -> str:
    """At most 500 characters, without NUL (PostgreSQL text refuses it)."""
    return text[:500].replace("\x00", "\ufffd")
