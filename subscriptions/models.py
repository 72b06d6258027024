"""Durable subscriptions: what they want (a filter), how they get it (webhook or pull), where they are.

A subscription is a cursor over the global log plus a queue per stream:

- ``Subscription.checkpoint`` is the position up to which the log has been scanned; every matching
  event at or below it has a ``Delivery`` row (or has been delivered, dead-lettered or skipped).
  The scan reads only up to the safe horizon, so no committed event is ever passed over.
- ``Delivery`` rows are the pending messages, one per event (and per replay job). They are
  delivered in position order within their stream.
- ``SubscriptionStream`` is the lock unit for one (subscription, stream): who holds the stream's
  lease (a webhook worker or a pull consumer), when its head may be tried again (retry backoff), and
  counters. A failing head holds back its own stream only.
- ``DeadLetter`` keeps events that exhausted their attempts or were parked, until redriven or
  discarded. ``ReplayJob`` re-enqueues a slice of the log without touching the live checkpoint.
"""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Now

from flunq_events.jsonutil import StoredJSONDecoder


class Subscription(models.Model):
    WEBHOOK = "webhook"
    PULL = "pull"
    KINDS = [(WEBHOOK, "webhook"), (PULL, "pull")]

    ACTIVE = "active"
    PAUSED = "paused"
    DISABLED = "disabled"
    STATES = [(ACTIVE, "active"), (PAUSED, "paused"), (DISABLED, "disabled")]

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=KINDS)
    # Filter: the same fields as events.selectors.EventFilter (without since/until).
    types = ArrayField(models.TextField(), default=list, blank=True)
    source = models.TextField(null=True, blank=True)
    subject = models.TextField(null=True, blank=True)
    stream = models.TextField(null=True, blank=True)
    category = models.TextField(null=True, blank=True)
    tenantid = models.TextField(null=True, blank=True)
    workflowid = models.TextField(null=True, blank=True)
    executionid = models.TextField(null=True, blank=True)
    taskid = models.TextField(null=True, blank=True)
    correlationid = models.TextField(null=True, blank=True)
    # Start as given (beginning | now | a position | a time); resolved into the first checkpoint.
    start = models.TextField(default="now")
    # Webhook delivery.
    url = models.TextField(null=True, blank=True)
    secret = models.TextField(blank=True, default="", editable=False)
    # Retry policy: attempts before dead-lettering; backoff[i] = seconds after failed attempt i+1
    # (the last value repeats).
    max_attempts = models.PositiveIntegerField()
    backoff = ArrayField(models.FloatField(), default=list)
    # Pull: the lease a fetch takes when it names none.
    lease_seconds = models.FloatField(default=30.0)
    state = models.CharField(max_length=16, choices=STATES, default=ACTIVE)
    disabled_reason = models.TextField(blank=True, default="")
    # Every event at or below this position has been enqueued (see module docstring).
    checkpoint = models.BigIntegerField(default=0)
    # Counters of streams compacted away (``queue.compact``); progress adds the live stream rows.
    delivered_total = models.BigIntegerField(db_default=0)
    failed_attempts_total = models.BigIntegerField(db_default=0)
    dead_lettered_total = models.BigIntegerField(db_default=0)
    # Webhooks: start of the current run of failures (cleared by a success); drives auto-disable.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "flunq_subscriptions"
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenantid", "name"], name="flunq_subscriptions_name", nulls_distinct=False
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class SubscriptionStream(models.Model):
    """One stream of one subscription: its lease, its retry backoff and its counters.

    Rows of idle streams are folded into the subscription's totals and removed by
    ``queue.compact``, so a stream per workflow execution does not grow this table for ever.
    """

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="streams")
    stream = models.TextField()
    pending = models.IntegerField(db_default=0)
    next_attempt_at = models.DateTimeField(db_default=Now())
    lease_owner = models.TextField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    delivered = models.BigIntegerField(db_default=0)
    failed_attempts = models.BigIntegerField(db_default=0)
    dead_lettered = models.BigIntegerField(db_default=0)

    class Meta:
        db_table = "flunq_subscription_streams"
        constraints = [
            models.UniqueConstraint(fields=["subscription", "stream"], name="flunq_subscription_streams_key"),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="flunq_substreams_ready",
                condition=models.Q(pending__gt=0),
            ),
            models.Index(
                fields=["subscription", "next_attempt_at"],
                name="flunq_substreams_sub_ready",
                condition=models.Q(pending__gt=0),
            ),
        ]


class ReplayJob(models.Model):
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELED = "canceled"
    STATES = [(RUNNING, "running"), (COMPLETED, "completed"), (CANCELED, "canceled")]

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="replays")
    # The request as given, for people; the resolved slice is (start_after, end_position].
    request = models.JSONField(default=dict, decoder=StoredJSONDecoder)
    types = ArrayField(models.TextField(), default=list, blank=True)
    stream = models.TextField(null=True, blank=True)
    start_after = models.BigIntegerField()
    end_position = models.BigIntegerField()
    cursor = models.BigIntegerField()
    state = models.CharField(max_length=16, choices=STATES, default=RUNNING)
    enqueued = models.BigIntegerField(default=0)
    delivered = models.BigIntegerField(default=0)
    dead_lettered = models.BigIntegerField(default=0)
    created_by = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(db_default=Now())
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "flunq_replay_jobs"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"replay {self.id} of {self.subscription_id}"


class Delivery(models.Model):
    """A pending message: one event for one subscription (live, redriven or from a replay)."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="deliveries")
    stream = models.TextField()
    position = models.BigIntegerField()
    replay_job = models.ForeignKey(ReplayJob, null=True, blank=True, on_delete=models.CASCADE)
    attempts = models.IntegerField(db_default=0)
    lease_owner = models.TextField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, db_default="")
    last_status = models.IntegerField(null=True, blank=True)
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "flunq_deliveries"
        indexes = [
            models.Index(fields=["subscription", "stream", "position", "id"], name="flunq_deliveries_head"),
            models.Index(
                fields=["replay_job"],
                name="flunq_deliveries_replay",
                condition=models.Q(replay_job__isnull=False),
            ),
        ]
        constraints = [
            # The live scan enqueues each position once; replays add their own rows.
            models.UniqueConstraint(
                fields=["subscription", "position"],
                name="flunq_deliveries_live",
                condition=models.Q(replay_job__isnull=True),
            ),
        ]


class DeadLetter(models.Model):
    MAX_ATTEMPTS = "max_attempts"
    PARKED = "parked"
    REASONS = [(MAX_ATTEMPTS, "max attempts"), (PARKED, "parked by a consumer")]

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="dead_letters")
    stream = models.TextField()
    position = models.BigIntegerField()
    event_id = models.TextField()
    source = models.TextField()
    type = models.TextField()
    replay_job = models.ForeignKey(ReplayJob, null=True, blank=True, on_delete=models.SET_NULL)
    reason = models.CharField(max_length=16, choices=REASONS)
    attempts = models.IntegerField()
    last_error = models.TextField(blank=True, db_default="")
    last_status = models.IntegerField(null=True, blank=True)
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "flunq_dead_letters"
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["subscription", "id"], name="flunq_dead_letters_sub"),
        ]

    def __str__(self) -> str:
        return f"{self.type} @{self.position} ({self.reason})"
