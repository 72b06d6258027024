"""How far each sink is behind the log: for the admin, ``/readyz`` and metrics.

``sink_status(sink)`` reads the checkpoint, the safe horizon and the oldest unpublished event:

- ``lag_events``: positions between checkpoint and horizon (an upper bound of the events still to
  publish: rolled-back appends leave gaps in positions);
- ``lag_seconds``: age of the oldest event not yet published (0 when caught up);
- ``last_error``: what the broker said last time a batch failed (cleared by the next success).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone

from events import horizon as horizon_
from relay.models import Checkpoint, DeadLetter


@dataclass
class SinkStatus:
    sink: str
    checkpoint: int
    horizon: int
    lag_events: int
    lag_seconds: float
    last_error: str
    last_error_at: datetime | None
    last_published_at: datetime | None
    holder: str
    heartbeat_at: datetime | None
    dead_letters: int

    def as_dict(self) -> dict:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, datetime):
                out[key] = value.isoformat()
        return out


def oldest_unpublished(after: int, horizon: int) -> datetime | None:
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT recordedtime FROM flunq_events WHERE "position" > %s AND "position" <= %s '
            'ORDER BY "position" LIMIT 1',
            [after, horizon],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def sink_status(sink: str, *, horizon: int | None = None) -> SinkStatus:
    checkpoint = Checkpoint.objects.filter(sink=sink).first() or Checkpoint(sink=sink)
    upper = horizon_.current() if horizon is None else horizon
    oldest = oldest_unpublished(checkpoint.position, upper)
    return SinkStatus(
        sink=sink,
        checkpoint=checkpoint.position,
        horizon=upper,
        lag_events=max(0, upper - checkpoint.position),
        lag_seconds=max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0,
        last_error=checkpoint.last_error,
        last_error_at=checkpoint.last_error_at,
        last_published_at=checkpoint.last_published_at,
        holder=checkpoint.holder,
        heartbeat_at=checkpoint.heartbeat_at,
        dead_letters=DeadLetter.objects.filter(sink=sink).count(),
    )


def statuses(sinks: list[str] | None = None) -> list[SinkStatus]:
    """Every configured sink (``BACKEND``) plus any with a checkpoint row; for metrics."""
    names = list(sinks) if sinks is not None else list(settings.BACKENDS)
    if sinks is None:
        names += [s for s in Checkpoint.objects.values_list("sink", flat=True) if s not in names]
    upper = horizon_.current()
    return [sink_status(name, horizon=upper) for name in names]


def readiness(sink: str) -> dict:
    """``/readyz`` detail. Lag alone fails readiness only past ``RELAY_READY_MAX_LAG_SECONDS`` (if set):
    a broker outage should not take the API out of its load balancer."""
    status = sink_status(sink)
    limit = settings.RELAY_READY_MAX_LAG_SECONDS
    return {"ok": not limit or status.lag_seconds <= limit, **status.as_dict()}


def register_readiness_checks() -> None:
    from flunq_events.health import READINESS_CHECKS

    for alias in settings.BACKENDS:
        READINESS_CHECKS[f"relay:{alias}"] = functools.partial(readiness, alias)


def register_metrics() -> None:
    """Per-sink lag, errors and dead letters at ``/metrics`` (read at scrape time)."""
    from flunq_events import metrics

    def gauge(field: str):
        def collect():
            for status in statuses():
                value = getattr(status, field)
                yield {"sink": status.sink}, float(bool(value) if field == "last_error" else value)

        return collect

    for name, field, doc in (
        ("flunq_relay_checkpoint", "checkpoint", "last position the sink's broker acknowledged"),
        ("flunq_relay_lag_events", "lag_events", "positions between the sink's checkpoint and the horizon"),
        ("flunq_relay_lag_seconds", "lag_seconds", "age of the oldest event not yet published to the sink"),
        ("flunq_relay_failing", "last_error", "1 while the sink's last batch failed"),
        ("flunq_relay_dead_letters", "dead_letters", "events the broker refused for good"),
    ):
        metrics.register_gauge(name, doc, ["sink"], gauge(field))
