"""Per-request observation: a request id, one JSON log line, HTTP metrics.

The request id is the caller's ``X-Request-ID`` when it is a sane token (letters, digits and
``._:-``, at most 128 characters), else a new one; it is echoed in the response's ``X-Request-ID``
and carried by every log line written while the request is served (``flunq_events.logs``).

One line per request on the ``flunq.http`` logger: method, path, route, status, duration, the
token's name and tenant (never the token); at DEBUG for ``/healthz``, ``/readyz`` and ``/metrics``. Metrics: ``flunq_http_requests_total`` and
``flunq_http_request_duration_seconds`` by method and route name (the URL pattern's name, so
paths with ids do not explode the label set). For streaming responses (SSE) the duration ends at
the response headers.

First in ``MIDDLEWARE``, so it sees every request and its final status.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponseBadRequest, HttpResponseBase
from django.utils.decorators import sync_and_async_middleware

from access.principal import Principal
from flunq_events import logs, metrics

logger = logging.getLogger("flunq.http")
HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}\Z")
# Probes and scrapes arrive every few seconds from every balancer and Prometheus: logged at DEBUG.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def incoming_id(request: HttpRequest) -> str:
    given = request.headers.get(HEADER)
    if given and _SANE_ID.match(given):
        return given
    return uuid.uuid4().hex


def route_of(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.view_name or match.route or "unnamed"


def _finish(request: HttpRequest, response: HttpResponseBase, started: float, rid: str) -> HttpResponseBase:
    elapsed = time.perf_counter() - started
    route = route_of(request)
    method = request.method or ""
    metrics.HTTP_REQUESTS.labels(method, route, str(response.status_code)).inc()
    metrics.HTTP_SECONDS.labels(method, route).observe(elapsed)
    response[HEADER] = rid
    fields = {
        "method": method,
        "path": request.path,
        "route": route,
        "status": response.status_code,
        "duration_ms": round(elapsed * 1000, 3),
    }
    # DRF puts the authenticated Principal on the request; anything else (Django's lazy session
    # user) is left untouched, since reading it would query the session store.
    user = request.__dict__.get("user")
    if type(user) is Principal:
        fields["principal"] = user.name
        if user.tenant is not None:
            fields["tenant"] = user.tenant
    if response.status_code >= 500:
        level = logging.ERROR
    elif request.path in QUIET_PATHS:
        level = logging.DEBUG
    else:
        level = logging.INFO
    logger.log(level, "%s %s %s", method, request.path, response.status_code, extra=fields)
    return response


@sync_and_async_middleware
def request_observation(get_response: Callable) -> Callable:
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponseBase:
            started = time.perf_counter()
            rid = incoming_id(request)
            token = logs.bind_request_id(rid)
            try:
                response = await get_response(request)
                return _finish(request, response, started, rid)
            finally:
                logs.request_id.reset(token)

    else:

        def middleware(request: HttpRequest) -> HttpResponseBase:
            started = time.perf_counter()
            rid = incoming_id(request)
            token = logs.bind_request_id(rid)
            try:
                response = get_response(request)
                return _finish(request, response, started, rid)
            finally:
                logs.request_id.reset(token)

    return middleware


def _nul_in_admin_address(request: HttpRequest) -> HttpResponseBadRequest | None:
    if request.path.startswith("/admin/") and (
        "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", "")
    ):
        return HttpResponseBadRequest("NUL (%00) in the address: PostgreSQL text cannot hold it")
    return None


@sync_and_async_middleware
def admin_refuses_nul(get_response: Callable) -> Callable:
    """The admin's filters, searches and object ids go into queries of text columns, which refuse
    NUL with an error (a 500): a 400 says what is wrong. The API checks its own input."""
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponseBase:
            return _nul_in_admin_address(request) or await get_response(request)

    else:

        def middleware(request: HttpRequest) -> HttpResponseBase:
            return _nul_in_admin_address(request) or get_response(request)

    return middleware
