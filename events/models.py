"""The event log: one row per CloudEvent, append-only, ordered by a gap-safe global position.

Rows are written only by ``events.services.append`` through the SQL function ``flunq_append``
(``events/sql/log.sql``); PostgreSQL itself refuses UPDATE and DELETE on the table. The model
exists for reads (admin) and for migrations.
"""

from django.db import models


class Xid8Field(models.Field):
    """PostgreSQL ``xid8``: the id of the transaction that appended the row (see horizon.py)."""

    description = "PostgreSQL 64-bit transaction id"

    def db_type(self, connection) -> str:
        return "xid8"


class StoredJSONField(models.JSONField):
    """PostgreSQL ``json``: the JSON kept as the service wrote it, read back with no conversion
    (``jsonb`` would be re-rendered on every read: the most expensive part of reading a page)."""

    def db_type(self, connection) -> str:
        return "json"

    def from_db_value(self, value, expression, connection):
        # psycopg parses ``json`` itself (Django installs a text loader for ``jsonb`` only).
        return value if not isinstance(value, str) else super().from_db_value(value, expression, connection)


class Event(models.Model):
    position = models.BigIntegerField(primary_key=True)
    xid = Xid8Field(editable=False)
    stream = models.TextField(db_collation="C")
    version = models.BigIntegerField()
    # CloudEvents attributes. `id` is a reserved field name in Django, hence event_id.
    event_id = models.TextField(db_column="id", db_collation="C")
    source = models.TextField(db_collation="C")
    specversion = models.TextField()
    type = models.TextField(db_collation="C")
    subject = models.TextField(null=True, blank=True)
    time = models.DateTimeField(null=True, blank=True)
    datacontenttype = models.TextField(null=True, blank=True)
    dataschema = models.TextField(null=True, blank=True)
    data = StoredJSONField(null=True, blank=True)
    data_base64 = models.BinaryField(null=True, blank=True)
    # flunq extension attributes, kept as columns for filtering.
    tenantid = models.TextField(null=True, blank=True, db_collation="C")
    workflowid = models.TextField(null=True, blank=True, db_collation="C")
    executionid = models.TextField(null=True, blank=True)
    taskid = models.TextField(null=True, blank=True)
    correlationid = models.TextField(null=True, blank=True, db_collation="C")
    causationid = models.TextField(null=True, blank=True)
    extensions = models.JSONField(default=dict, blank=True)
    recordedtime = models.DateTimeField()

    class Meta:
        db_table = "flunq_events"
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["stream", "version"], name="flunq_events_stream_version"),
            models.UniqueConstraint(fields=["source", "event_id"], name="flunq_events_source_id"),
        ]
        indexes = [
            models.Index(fields=["type", "position"], name="flunq_events_type"),
            models.Index(fields=["recordedtime"], name="flunq_events_recordedtime"),
            models.Index(
                fields=["workflowid", "position"],
                name="flunq_events_workflowid",
                condition=models.Q(workflowid__isnull=False),
            ),
            models.Index(
                fields=["correlationid", "position"],
                name="flunq_events_correlationid",
                condition=models.Q(correlationid__isnull=False),
            ),
            models.Index(
                fields=["tenantid", "position"],
                name="flunq_events_tenantid",
                condition=models.Q(tenantid__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.position} {self.type} {self.stream}@{self.version}"
