"""The schema registry's tables: subjects, their numbered versions, and the distinct schemas.

- ``Schema``: one row per distinct schema (by canonical JSON text). Its ``id`` is the global schema
  id of the Confluent API: the same schema registered under two subjects shares one id.
- ``Subject``: a name (for events, the event type), its compatibility override (null = the global
  setting), whether appends of that type are validated, and the last version number handed out
  (so numbers are never reused, even after a version is deleted permanently).
- ``SchemaVersion``: version ``n`` of a subject. Immutable; only ``deleted_at`` (soft delete) ever
  changes. A permanent delete removes the row.
- ``RegistryConfig``: the single row of global settings (the default compatibility mode).

Rows are written only through ``schemas.services``.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now

from flunq_events.jsonutil import StoredJSONDecoder


class Compatibility(models.TextChoices):
    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"


DEFAULT_COMPATIBILITY = Compatibility.BACKWARD


class Schema(models.Model):
    # The canonical text: compact JSON with sorted keys; sha256 of it identifies the schema.
    canonical = models.TextField()
    fingerprint = models.CharField(max_length=64, unique=True)
    document = models.JSONField(decoder=StoredJSONDecoder)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "flunq_schemas"

    def __str__(self) -> str:
        return f"schema {self.pk}"


class Subject(models.Model):
    name = models.CharField(max_length=255, unique=True)
    compatibility = models.CharField(
        max_length=32,
        choices=Compatibility.choices,
        null=True,
        blank=True,
        help_text="empty: use the global setting",
    )
    validate = models.BooleanField(
        default=True, help_text="validate the data of appended events whose type is this subject"
    )
    last_version = models.IntegerField(default=0)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "flunq_schema_subjects"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SchemaVersion(models.Model):
    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="versions")
    version = models.IntegerField()
    schema = models.ForeignKey(Schema, on_delete=models.PROTECT, related_name="versions")
    created_at = models.DateTimeField(db_default=Now())
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "flunq_schema_versions"
        ordering = ["subject", "version"]
        constraints = [
            models.UniqueConstraint(
                fields=["subject", "version"], name="flunq_schema_versions_subject_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject.name} v{self.version}"

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


class RegistryConfig(models.Model):
    """The global settings of the registry: one row, id 1."""

    compatibility = models.CharField(
        max_length=32, choices=Compatibility.choices, default=DEFAULT_COMPATIBILITY
    )

    class Meta:
        db_table = "flunq_schema_registry_config"
        verbose_name = "registry configuration"
        verbose_name_plural = "registry configuration"

    def __str__(self) -> str:
        return f"global compatibility {self.compatibility}"
