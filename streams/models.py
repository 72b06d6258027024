"""A stream: the ordered sequence of one aggregate's events, e.g. ``execution-42``.

Rows are created by the append function in the database (``events/sql/append.sql``) on a stream's
first event, or explicitly through ``POST /api/v1/streams`` with metadata. The part of the name
before the first ``-`` is the stream's category.
"""

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Now

from flunq_events.jsonutil import StoredJSONDecoder


class Stream(models.Model):
    name = models.TextField(primary_key=True, db_collation="C")
    category = models.TextField()
    # Version of the last event; -1 while the stream has none. Versions are dense from 0.
    last_version = models.BigIntegerField(db_default=-1)
    last_position = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())
    last_event_at = models.DateTimeField(null=True, blank=True)
    # Soft delete: reads answer 410 and appends are refused until the stream is recreated.
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Versions below this are hidden from stream reads (set when a deleted stream is recreated).
    # The events stay in the global log: history is never rewritten.
    truncate_before = models.BigIntegerField(db_default=0)
    # Retention for stream reads, like KurrentDB's $maxAge/$maxCount; null = keep everything.
    # Checked where they are set (streams.services, the admin's form), not by CHECK constraints:
    # every append updates this row, and PostgreSQL evaluates a table's CHECKs on each update
    # (4% of a single append's work in the database; docs/benchmarks.md, finding 18).
    max_age = models.IntegerField(
        null=True, blank=True, help_text="seconds", validators=[MinValueValidator(0)]
    )
    max_count = models.IntegerField(null=True, blank=True, validators=[MinValueValidator(0)])
    # The tenant of the stream's first event, or of the tenant-bound caller that created it;
    # a tenant-bound token sees and writes only its own streams (access/tenancy.py).
    tenant = models.TextField(null=True, blank=True)
    metadata = models.JSONField(
        db_default=models.Value({}, output_field=models.JSONField()), blank=True, decoder=StoredJSONDecoder
    )

    class Meta:
        db_table = "flunq_streams"
        ordering = ["name"]
        # Equality only: no second, pattern-matching index as db_index=True adds for text
        # (each index of this table is opened by every append's update of the row).
        indexes = [
            models.Index(fields=["category"], name="flunq_streams_category"),
            models.Index(fields=["tenant"], name="flunq_streams_tenant"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def event_count(self) -> int:
        return self.last_version + 1 - self.truncate_before if self.last_version >= 0 else 0
