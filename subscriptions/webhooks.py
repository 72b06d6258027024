"""Send one event to a webhook: a signed CloudEvents POST to a checked address, and what came of it.

The request is a structured-mode CloudEvent (``application/cloudevents+json``) signed per the
Standard Webhooks spec with the ``standardwebhooks`` package: ``webhook-id`` (stable across
retries of the same message), ``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256>``
over ``{id}.{timestamp}.{body}`` with the subscription's ``whsec_`` secret.

The connection goes to the address ``ssrf.check_url`` approved (the URL's host is sent as ``Host``
and as TLS SNI, and the certificate is verified against it), redirects are not followed, proxies
from the environment are ignored, and the timeout is ``WEBHOOK_TIMEOUT_SECONDS``.

``Outcome.kind`` tells the delivery loop what to do: ``ok`` (2xx), ``gone`` (410: disable the
subscription), ``retry`` (anything else; ``retry_after`` set from a 429/503 ``Retry-After``).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
import orjson
from django.conf import settings
from standardwebhooks import Webhook

from flunq_events.numbers import is_digits
from subscriptions.ssrf import UnsafeURL, check_url

USER_AGENT = "flunq-events-webhooks/1"
CONTENT_TYPE = "application/cloudevents+json"
MAX_RETRY_AFTER = 24 * 3600.0


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
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = (moment - (now or datetime.now(UTC))).total_seconds()
    return min(max(delta, 0.0), MAX_RETRY_AFTER)


def new_client() -> httpx.Client:
    # trust_env=False: an HTTP(S)_PROXY in the environment must not carry webhooks elsewhere.
    return httpx.Client(
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
        "host": target.host_header,
        **signed_headers(secret, message_id, text),
    }
    response = None
    for address in target.addresses:
        try:
            response = client.post(
                target.connect_url(address),
                content=body,
                headers=headers,
                extensions={"sni_hostname": target.host},
            )
            break
        except httpx.ConnectError as exc:
            # The next checked address of the same host may answer (IPv6 first, IPv4 listening).
            error = Outcome("retry", error=f"cannot connect to {address}: {exc}"[:500])
        except httpx.TimeoutException as exc:
            return Outcome(
                "retry", error=f"timeout after {settings.WEBHOOK_TIMEOUT_SECONDS}s: {type(exc).__name__}"
            )
        except httpx.HTTPError as exc:
            return Outcome("retry", error=f"{type(exc).__name__}: {exc}"[:500])
    if response is None:
        return error
    status = response.status_code
    if 200 <= status < 300:
        return Outcome("ok", status=status)
    if status == 410:
        return Outcome("gone", status=status, error="the receiver answered 410 Gone")
    if 300 <= status < 400:
        location = response.headers.get("location", "")[:200]
        return Outcome("retry", status=status, error=f"redirect to {location!r} not followed")
    retry_after = parse_retry_after(response.headers.get("retry-after")) if status in (429, 503) else None
    snippet = response.text[:200] if response.content else ""
    return Outcome("retry", status=status, error=f"HTTP {status} {snippet}".strip(), retry_after=retry_after)
