"""Reads for the subscriptions API and admin: subscriptions with their progress, dead letters, replays."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Count, Sum

from events import horizon
from subscriptions.inputs import FILTER_FIELDS
from subscriptions.models import DeadLetter, ReplayJob, Subscription, SubscriptionStream


def progress(subscriptions: Iterable[Subscription], upper: int | None = None) -> dict[Any, dict[str, Any]]:
    """Checkpoint, lag and counters of each subscription, in one query for the lot."""
    subscriptions = list(subscriptions)
    upper = horizon.current() if upper is None else upper
    sums = {
        row["subscription_id"]: row
        for row in SubscriptionStream.objects.filter(subscription__in=subscriptions)
        .values("subscription_id")
        .annotate(
            pending=Sum("pending"),
            delivered=Sum("delivered"),
            failed_attempts=Sum("failed_attempts"),
            dead_lettered=Sum("dead_lettered"),
        )
    }
    dead = dict(
        DeadLetter.objects.filter(subscription__in=subscriptions)
        .values("subscription_id")
        .annotate(n=Count("id"))
        .values_list("subscription_id", "n")
    )
    result = {}
    for subscription in subscriptions:
        row = sums.get(subscription.id, {})
        pending = row.get("pending") or 0
        behind = max(upper - subscription.checkpoint, 0)
        result[subscription.id] = {
            "checkpoint": subscription.checkpoint,
            "horizon": upper,
            "pending": pending,
            "lag": pending + behind,
            "delivered": (row.get("delivered") or 0) + subscription.delivered_total,
            "failed_attempts": (row.get("failed_attempts") or 0) + subscription.failed_attempts_total,
            "dead_lettered": (row.get("dead_lettered") or 0) + subscription.dead_lettered_total,
            "dead_letters": dead.get(subscription.id, 0),
        }
    return result


def subscription_as_dict(
    subscription: Subscription, progress_: dict[str, Any] | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(subscription.id),
        "name": subscription.name,
        "kind": subscription.kind,
        "filter": {name: getattr(subscription, name) for name in FILTER_FIELDS},
        "start": subscription.start,
        "retry": {"max_attempts": subscription.max_attempts, "backoff": list(subscription.backoff)},
        "state": subscription.state,
        "disabled_reason": subscription.disabled_reason or None,
        "failing_since": subscription.failing_since,
        "created_at": subscription.created_at,
        "updated_at": subscription.updated_at,
    }
    if subscription.kind == Subscription.WEBHOOK:
        data["url"] = subscription.url
    else:
        data["lease_seconds"] = subscription.lease_seconds
    if progress_ is not None:
        data["progress"] = progress_
    return data


def dead_letter_as_dict(row: DeadLetter) -> dict[str, Any]:
    return {
        "id": row.id,
        "subscription": str(row.subscription_id),
        "stream": row.stream,
        "position": row.position,
        "event_id": row.event_id,
        "source": row.source,
        "type": row.type,
        "reason": row.reason,
        "attempts": row.attempts,
        "last_error": row.last_error or None,
        "last_status": row.last_status,
        "replay_job": row.replay_job_id,
        "first_attempt_at": row.first_attempt_at,
        "last_attempt_at": row.last_attempt_at,
        "dead_lettered_at": row.created_at,
    }


def replay_as_dict(job: ReplayJob) -> dict[str, Any]:
    scanned = job.cursor - job.start_after
    span = job.end_position - job.start_after
    return {
        "id": job.id,
        "subscription": str(job.subscription_id),
        "state": job.state,
        "request": job.request,
        "from_position": job.start_after + 1,
        "until_position": job.end_position + 1,
        "types": list(job.types),
        "stream": job.stream,
        "scanned_to": job.cursor,
        "scan_progress": 1.0 if span <= 0 else round(scanned / span, 4),
        "enqueued": job.enqueued,
        "delivered": job.delivered,
        "dead_lettered": job.dead_lettered,
        # A canceled job's undelivered events left the queue when it was canceled: none is pending.
        "pending": 0
        if job.state == ReplayJob.CANCELED
        else max(job.enqueued - job.delivered - job.dead_lettered, 0),
        "created_by": job.created_by or None,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }
