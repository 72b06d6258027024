"""Snapshots of event-sourced aggregates: the state of a stream's aggregate as of one version.

A snapshot is derived data, a cache of folding the stream's events up to ``version``; it never
alters the events. ``type`` labels the state's shape (``execution-state/v2``), so several
projections of one stream keep their own snapshots. Older snapshots are trimmed on save
(``SNAPSHOT_RETENTION`` per stream and type).
"""

from django.db import models

from flunq_events.jsonutil import StoredJSONDecoder
from streams.models import Stream


class Snapshot(models.Model):
    stream = models.ForeignKey(
        Stream, on_delete=models.CASCADE, related_name="snapshots", db_column="stream", to_field="name"
    )
    version = models.BigIntegerField(help_text="version of the last event the state includes")
    type = models.CharField(max_length=200, blank=True, default="", help_text="label of the state's shape")
    state = models.JSONField(decoder=StoredJSONDecoder)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "flunq_snapshots"
        ordering = ["stream", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["stream", "type", "version"], name="flunq_snapshots_version"),
        ]
        indexes = [models.Index(fields=["stream", "-version"], name="flunq_snapshots_latest")]

    def __str__(self) -> str:
        return f"{self.stream_id}@{self.version}" + (f" ({self.type})" if self.type else "")
