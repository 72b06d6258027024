"""Per-subscription lag and dead letter depth at ``/metrics`` (read at scrape time)."""

from __future__ import annotations

from flunq_events import metrics


def _samples(field: str):
    def collect():
        from subscriptions.models import Subscription
        from subscriptions.selectors import progress

        subscriptions = list(Subscription.objects.all())
        names = {subscription.id: subscription.name for subscription in subscriptions}
        for subscription_id, values in progress(subscriptions).items():
            yield {"subscription": names[subscription_id]}, float(values[field])

    return collect


def register() -> None:
    for name, field, doc in (
        (
            "flunq_subscription_lag_events",
            "lag",
            "events still to deliver (pending + positions not yet scanned)",
        ),
        ("flunq_subscription_pending", "pending", "events queued for delivery"),
        ("flunq_subscription_dead_letters", "dead_letters", "events in the subscription's dead letter queue"),
    ):
        metrics.register_gauge(name, doc, ["subscription"], _samples(field))
