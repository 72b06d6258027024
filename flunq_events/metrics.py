"""Prometheus metrics: ``GET /metrics`` and the instruments the parts of the service share.

Built on prometheus-client's default registry, so a ``Counter`` or ``Histogram`` defined anywhere
is exported. Figures that live in the database (lag, queue depths) are read at scrape time by
callbacks registered with ``register_gauge``; a failing callback drops its family from that
scrape and counts ``flunq_metrics_callback_errors_total{gauge=...}``::

    from flunq_events import metrics

    metrics.register_gauge(
        "flunq_relay_lag_events", "Events committed but not yet published, per sink", ["sink"],
        lambda: [({"sink": row.sink}, row.lag) for row in relay_status()],
    )

Each process answers with its own counters (prometheus-client's multiprocess mode is not set up):
run one web process per container, or scrape every process. Gauges read from the database are the
same whichever process answers.

Exported here: appends (count by outcome, events written, latency and batch size histograms),
the safe horizon and its lag (``max(position) - horizon`` in events, and seconds since the oldest
committed event above the horizon was recorded), and HTTP requests (``flunq_events.middleware``).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from flunq_events.api import allow_methods
from flunq_events.errors import ServiceError

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

APPEND_CALLS = Counter(
    "flunq_append_calls",
    "Calls of the append path by outcome: written, duplicate (an idempotent retry) or the error code",
    ["outcome"],
)
APPENDED_EVENTS = Counter("flunq_appended_events", "Events written to the log (retries not counted)")
APPEND_SECONDS = Histogram(
    "flunq_append_seconds",
    "Duration of successful appends (validation and the database)",
    buckets=LATENCY_BUCKETS,
)
APPEND_BATCH_EVENTS = Histogram(
    "flunq_append_batch_events",
    "Events per successful append call",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000),
)
HTTP_REQUESTS = Counter("flunq_http_requests", "HTTP requests answered", ["method", "route", "status"])
HTTP_SECONDS = Histogram(
    "flunq_http_request_duration_seconds",
    "Time from request to response headers",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
CALLBACK_ERRORS = Counter(
    "flunq_metrics_callback_errors", "Gauge callbacks that failed at scrape time", ["gauge"]
)

Samples = Iterable[tuple[dict[str, str], float]]


@dataclass(frozen=True)
class _Gauge:
    name: str
    documentation: str
    labelnames: tuple[str, ...]
    collect: Callable[[], Samples]


class _CallbackCollector(Collector):
    """Asks each registered callback for its samples at scrape time."""

    def __init__(self) -> None:
        self.gauges: dict[str, _Gauge] = {}
        self.lock = threading.Lock()

    def describe(self):
        # Without describe(), registering would call collect() at import, before a database exists.
        return []

    def collect(self):
        with self.lock:
            gauges = list(self.gauges.values())
        for gauge in gauges:
            try:
                samples = list(gauge.collect())
            except Exception:
                logger.exception("metrics callback %s failed", gauge.name)
                CALLBACK_ERRORS.labels(gauge.name).inc()
                continue
            family = GaugeMetricFamily(gauge.name, gauge.documentation, labels=gauge.labelnames)
            for labels, value in samples:
                family.add_metric([str(labels.get(name, "")) for name in gauge.labelnames], float(value))
            yield family


_callbacks = _CallbackCollector()
REGISTRY.register(_callbacks)


def register_gauge(
    name: str, documentation: str, labelnames: Sequence[str], collect: Callable[[], Samples]
) -> None:
    """Export gauge ``name``, whose samples ``collect()`` returns as (labels, value) at scrape time.

    Registering a name again replaces the callback (module reloads, tests).
    """
    with _callbacks.lock:
        _callbacks.gauges[name] = _Gauge(name, documentation, tuple(labelnames), collect)


def unregister_gauge(name: str) -> None:
    with _callbacks.lock:
        _callbacks.gauges.pop(name, None)


def observe_append(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for ``events.services.append``: counts outcomes, events and latency."""

    @functools.wraps(func)
    def observed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            result = func(*args, **kwargs)
        except ServiceError as exc:
            APPEND_CALLS.labels(exc.code).inc()
            raise
        except Exception:
            APPEND_CALLS.labels("error").inc()
            raise
        APPEND_SECONDS.observe(time.perf_counter() - started)
        written = sum(not item.duplicate for item in result.events)
        (_APPEND_WRITTEN if written else _APPEND_DUPLICATE).inc()
        if written:
            APPENDED_EVENTS.inc(written)
        APPEND_BATCH_EVENTS.observe(len(result.events))
        return result

    return observed


# Looked up once: ``labels()`` takes a lock and builds a key on every call.
_APPEND_WRITTEN = APPEND_CALLS.labels("written")
_APPEND_DUPLICATE = APPEND_CALLS.labels("duplicate")


def _positions() -> Samples:
    with connection.cursor() as cursor:
        cursor.execute("SELECT flunq_horizon(), coalesce((SELECT max(position) FROM flunq_events), 0)")
        horizon, highest = cursor.fetchone()
    return [({"figure": "horizon"}, horizon), ({"figure": "max_position"}, highest)]


def _horizon_lag() -> Samples:
    # The horizon is cluster-wide: any transaction holding an xid holds it back. Lag in events
    # and in seconds tells an operator that readers (relay, feeds, subscriptions) are waiting.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce((SELECT max(position) FROM flunq_events), 0) - h, "
            "coalesce(extract(epoch FROM clock_timestamp() - (SELECT min(recordedtime) FROM flunq_events "
            "WHERE position > h)), 0) FROM (SELECT flunq_horizon() AS h) AS horizon"
        )
        events, seconds = cursor.fetchone()
    return [({"unit": "events"}, events), ({"unit": "seconds"}, seconds)]


register_gauge(
    "flunq_log_position",
    "The safe horizon (readers read up to it) and the highest committed position",
    ["figure"],
    _positions,
)
register_gauge(
    "flunq_horizon_lag",
    "How far the safe horizon trails the log: committed events above it, and seconds since the "
    "oldest of them was recorded (an open transaction holding an xid holds it back)",
    ["unit"],
    _horizon_lag,
)


@allow_methods("GET", "HEAD")
def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics`` in the Prometheus text format. Keep it off the public load balancer."""
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
