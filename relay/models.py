"""The relay's state in PostgreSQL: one checkpoint per sink, and dead letters.

A sink (a backend alias: ``redis``, ``kafka``, ``nats``) has published every event up to
``Checkpoint.position``. The relay advances it only after the broker acknowledged (or the relay
dead-lettered) every event of a batch. ``epoch`` grows with every rewind, so a relay that read the
checkpoint before the rewind cannot overwrite it afterwards (its compare-and-set fails).
"""

from __future__ import annotations

from django.db import models


class Checkpoint(models.Model):
    sink = models.CharField(max_length=64, unique=True)
    position = models.BigIntegerField(default=0)
    epoch = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)
    # Health, written by the active relay.
    last_published_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    holder = models.CharField(
        max_length=200, blank=True, default="", help_text="host:pid of the active relay"
    )
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "flunq_relay_checkpoints"

    def __str__(self) -> str:
        return f"{self.sink} @ {self.position}"


class DeadLetter(models.Model):
    """An event a broker refused for good; the relay skipped it for this sink."""

    sink = models.CharField(max_length=64)
    position = models.BigIntegerField()
    event_id = models.TextField()
    source = models.TextField()
    type = models.TextField()
    stream = models.TextField()
    error = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "flunq_relay_dead_letters"
        ordering = ["sink", "position"]
        constraints = [
            models.UniqueConstraint(fields=["sink", "position"], name="flunq_relay_dead_letter_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.sink} {self.position} {self.type}"
