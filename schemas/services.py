"""Every change to the schema registry goes through here: register, delete, configure.

Both APIs (ours under ``/api/v1/schemas``, the Confluent shape under ``/schema-registry/``), the
admin and ``seed_schemas`` call these functions; reads that need a rule (what "latest" means, which
versions a compatibility mode compares with) live here too.

- ``register(subject, document)``: checks the document (``schemas.documents``), returns the
  existing version when the subject already has this schema, else checks compatibility with the
  subject's live versions under its mode (``schemas.compatibility``) and adds version ``n + 1``.
  Incompatible: ``IncompatibleSchema`` (409) listing the differences.
- Deleting is two-step, as in Confluent: a soft delete hides a version (or every version of a
  subject) from reads, compatibility checks and validation; a permanent delete of something soft
  deleted removes the rows. Schema rows no version uses any more are removed with them.
- Compatibility: a subject's own setting, else the global one (``RegistryConfig``, default
  BACKWARD).

Every change tells ``schemas.validation`` to drop this process's cached view at commit; other
processes see it within ``SCHEMA_CACHE_SECONDS``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from flunq_events.errors import InvalidRequest
from flunq_events.numbers import is_digits
from schemas import compatibility as checker
from schemas import documents, validation
from schemas.errors import (
    IncompatibleSchema,
    InvalidCompatibility,
    InvalidSchema,
    InvalidSubject,
    InvalidVersion,
    SchemaNotFound,
    SubjectConfigNotFound,
    SubjectNotFound,
    SubjectNotSoftDeleted,
    SubjectSoftDeleted,
    VersionNotFound,
    VersionNotSoftDeleted,
    VersionSoftDeleted,
)
from schemas.models import (
    DEFAULT_COMPATIBILITY,
    Compatibility,
    RegistryConfig,
    Schema,
    SchemaVersion,
    Subject,
)

LATEST = "latest"
MAX_SUBJECT_LENGTH = 255
# No control character (Unicode category Cc: C0, DEL and C1), no "/" (it would not survive
# routing), no whitespace at either end.
_SUBJECT = re.compile(r"^[^\x00-\x1f\x7f-\x9f/]+\Z")
_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class Registered:
    version: SchemaVersion
    created: bool


@dataclass(slots=True)
class Verdict:
    """The outcome of a compatibility check, with differences tied to version numbers."""

    compatible: bool
    mode: str
    versions: list[int]
    differences: list[dict[str, Any]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "compatible": self.compatible,
            "mode": self.mode,
            "checked_versions": self.versions,
            "differences": self.differences,
        }


# --- names and settings ------------------------------------------------------------------------


def check_subject_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidSubject("a subject name must be a non-empty string", field="subject")
    if len(name) > MAX_SUBJECT_LENGTH:
        raise InvalidSubject(
            f"a subject name has at most {MAX_SUBJECT_LENGTH} characters, got {len(name)}", field="subject"
        )
    if not _SUBJECT.match(name) or name != name.strip():
        raise InvalidSubject(
            f"subject {name[:80]!r} must not contain '/', control characters or surrounding spaces",
            field="subject",
        )
    return name


def check_mode(value: Any) -> str:
    if isinstance(value, str) and value.upper() in Compatibility.values:
        return value.upper()
    raise InvalidCompatibility(
        f"compatibility must be one of {', '.join(Compatibility.values)}, got {str(value)[:60]!r}",
        field="compatibility",
        allowed=list(Compatibility.values),
    )


def parse_version(value: Any) -> int | str:
    """A version number >= 1 or ``latest`` (also accepts -1, Confluent's alias for latest)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == LATEST or text == "-1":
            return LATEST
        if is_digits(text, 10) and 1 <= int(text) <= 2**31 - 1:
            return int(text)
    elif isinstance(value, int) and not isinstance(value, bool):
        if value == -1:
            return LATEST
        if 1 <= value <= 2**31 - 1:
            return value
    raise InvalidVersion(
        f"a version is an integer from 1 to {2**31 - 1} or 'latest', got {str(value)[:40]!r}",
        field="version",
    )


def global_compatibility() -> str:
    row = RegistryConfig.objects.filter(pk=1).first()
    return row.compatibility if row else DEFAULT_COMPATIBILITY


def set_global_compatibility(mode: Any) -> str:
    mode = check_mode(mode)
    RegistryConfig.objects.update_or_create(pk=1, defaults={"compatibility": mode})
    return mode


def reset_global_compatibility() -> str:
    """Back to the default; returns the mode that was set."""
    previous = global_compatibility()
    RegistryConfig.objects.filter(pk=1).delete()
    return previous


def effective_compatibility(subject: Subject | None) -> str:
    if subject is not None and subject.compatibility:
        return subject.compatibility
    return global_compatibility()


# --- reads -------------------------------------------------------------------------------------


def _live(subject: Subject):
    return subject.versions.filter(deleted_at__isnull=True).select_related("schema").order_by("version")


def find_subject(name: str) -> Subject | None:
    return Subject.objects.filter(name=check_subject_name(name)).first()


def get_subject(name: str, *, include_deleted: bool = False) -> Subject:
    """A subject that has live versions (or any versions with ``include_deleted``)."""
    subject = find_subject(name)
    if subject is None:
        raise SubjectNotFound(f"subject {name!r} not found", subject=name)
    versions = subject.versions.all() if include_deleted else subject.versions.filter(deleted_at__isnull=True)
    if not versions.exists():
        raise SubjectNotFound(f"subject {name!r} not found", subject=name)
    return subject


def list_subjects(*, include_deleted: bool = False, prefix: str | None = None):
    live = SchemaVersion.objects.filter(subject=OuterRef("pk"))
    if not include_deleted:
        live = live.filter(deleted_at__isnull=True)
    subjects = Subject.objects.filter(Exists(live))
    if prefix:
        subjects = subjects.filter(name__startswith=prefix)
    return subjects.order_by("name")


def versions_of(subject: Subject, *, include_deleted: bool = False) -> list[SchemaVersion]:
    rows = subject.versions.select_related("schema").order_by("version")
    if not include_deleted:
        rows = rows.filter(deleted_at__isnull=True)
    return list(rows)


def get_version(name: str, version: Any, *, include_deleted: bool = False) -> SchemaVersion:
    number = parse_version(version)
    subject = get_subject(name, include_deleted=include_deleted)
    rows = subject.versions.select_related("schema", "subject")
    if not include_deleted:
        rows = rows.filter(deleted_at__isnull=True)
    row = rows.order_by("-version").first() if number == LATEST else rows.filter(version=number).first()
    if row is None:
        raise VersionNotFound(f"version {number} of subject {name!r} not found", subject=name, version=number)
    return row


def get_schema(schema_id: Any) -> Schema:
    if isinstance(schema_id, str) and is_digits(schema_id, 18):
        schema_id = int(schema_id)
    if not isinstance(schema_id, int) or isinstance(schema_id, bool) or schema_id < 1:
        raise SchemaNotFound(f"schema id {str(schema_id)[:40]!r} not found", id=str(schema_id)[:40])
    row = Schema.objects.filter(pk=schema_id).first()
    if row is None:
        raise SchemaNotFound(f"schema id {schema_id} not found", id=schema_id)
    return row


def subjects_of_schema(schema: Schema, *, include_deleted: bool = False) -> list[tuple[str, int]]:
    rows = schema.versions.select_related("subject").order_by("subject__name", "version")
    if not include_deleted:
        rows = rows.filter(deleted_at__isnull=True)
    return [(row.subject.name, row.version) for row in rows]


def lookup(name: str, document: Any, *, include_deleted: bool = False) -> SchemaVersion:
    """The version of ``name`` whose schema is ``document`` (canonically equal)."""
    subject = get_subject(name, include_deleted=include_deleted)
    document = documents.check_document(document)
    digest = documents.fingerprint(documents.canonical(document))
    rows = subject.versions.filter(schema__fingerprint=digest).select_related("schema", "subject")
    if not include_deleted:
        rows = rows.filter(deleted_at__isnull=True)
    row = rows.order_by("-version").first()
    if row is None:
        raise SchemaNotFound(f"this schema is not registered under subject {name!r}", subject=name)
    return row


# --- compatibility -----------------------------------------------------------------------------


def _verdict(document: dict, previous: list[SchemaVersion], mode: str) -> Verdict:
    try:
        result = checker.is_compatible(document, [row.schema.document for row in previous], mode)
    except checker.SchemaError as exc:
        raise InvalidSchema(
            f"compatibility cannot be checked: {exc}; a subject with compatibility NONE accepts such schemas",
            mode=mode,
        ) from None
    differences = [
        {
            "version": previous[item.previous_index].version,
            "direction": item.direction,
            "pointer": item.difference.pointer,
            "kind": item.difference.kind,
            "message": item.difference.message,
        }
        for item in result.differences
    ]
    messages = [
        f"version {entry['version']} ({entry['direction'].lower()}): {entry['pointer']} {entry['kind']}: "
        f"{entry['message']}"
        for entry in differences
    ]
    return Verdict(result.compatible, mode, [row.version for row in previous], differences, messages)


def check_compatibility(name: str, document: Any, *, version: Any = None, mode: Any = None) -> Verdict:
    """Would ``document`` be accepted under ``name``?

    Without ``version``: compared as ``register`` would (the subject's mode and the versions it
    implies). With ``version`` (a number or ``latest``): compared with that version only, in the
    directions of the mode. ``mode`` overrides the subject's setting.
    """
    document = documents.check_document(document)
    subject = find_subject(name)
    chosen = check_mode(mode) if mode is not None else effective_compatibility(subject)
    if version is not None:
        row = get_version(name, version)
        return _verdict(document, [row], chosen.removesuffix("_TRANSITIVE") if chosen != "NONE" else chosen)
    previous = versions_of(subject) if subject is not None else []
    return _verdict(document, previous, chosen)


# --- changes -----------------------------------------------------------------------------------


def _changed() -> None:
    transaction.on_commit(validation.invalidate)


def _schema_row(document: dict) -> Schema:
    text = documents.canonical(document)
    digest = documents.fingerprint(text)
    try:
        with transaction.atomic():
            row, _ = Schema.objects.get_or_create(
                fingerprint=digest, defaults={"canonical": text, "document": document}
            )
    except IntegrityError:  # registered concurrently by another subject
        row = Schema.objects.get(fingerprint=digest)
    return row


def register(name: str, document: Any) -> Registered:
    """Add ``document`` as the next version of ``name`` (created if needed), if compatible."""
    check_subject_name(name)
    document = documents.check_document(document)
    digest = documents.fingerprint(documents.canonical(document))
    with transaction.atomic():
        Subject.objects.get_or_create(name=name)
        # The row lock orders concurrent registrations under one subject.
        subject = Subject.objects.select_for_update().get(name=name)
        previous = list(_live(subject))
        for row in previous:
            if row.schema.fingerprint == digest:
                return Registered(row, created=False)
        verdict = _verdict(document, previous, effective_compatibility(subject))
        if not verdict.compatible:
            raise IncompatibleSchema(
                f"the schema is incompatible with version(s) "
                f"{', '.join(str(v) for v in sorted({d['version'] for d in verdict.differences}))} "
                f"of subject {name!r} under {verdict.mode}",
                subject=name,
                mode=verdict.mode,
                differences=verdict.differences,
                messages=verdict.messages,
            )
        schema = _schema_row(document)
        subject.last_version += 1
        subject.save(update_fields=["last_version"])
        row = SchemaVersion.objects.create(subject=subject, version=subject.last_version, schema=schema)
        row.subject = subject
        _changed()
    return Registered(row, created=True)


def _drop_orphans(schema_ids: set[int]) -> None:
    Schema.objects.filter(pk__in=schema_ids, versions__isnull=True).delete()


def delete_subject(name: str, *, permanent: bool = False) -> list[int]:
    """Soft delete every live version, or permanently delete a soft-deleted subject."""
    with transaction.atomic():
        subject = Subject.objects.select_for_update().filter(name=check_subject_name(name)).first()
        rows = list(subject.versions.order_by("version")) if subject else []
        if not rows:
            raise SubjectNotFound(f"subject {name!r} not found", subject=name)
        live = [row for row in rows if row.deleted_at is None]
        if not permanent:
            if not live:
                raise SubjectSoftDeleted(
                    f"subject {name!r} was soft deleted; delete it with permanent=true to remove it",
                    subject=name,
                )
            SchemaVersion.objects.filter(pk__in=[row.pk for row in live]).update(deleted_at=timezone.now())
            _changed()
            return [row.version for row in live]
        if live:
            raise SubjectNotSoftDeleted(
                f"subject {name!r} must be soft deleted before it is deleted permanently", subject=name
            )
        schema_ids = {row.schema_id for row in rows}
        subject.delete()
        _drop_orphans(schema_ids)
        _changed()
        return [row.version for row in rows]


def delete_version(name: str, version: Any, *, permanent: bool = False) -> int:
    number = parse_version(version)
    with transaction.atomic():
        subject = Subject.objects.select_for_update().filter(name=check_subject_name(name)).first()
        if subject is None or not subject.versions.exists():
            raise SubjectNotFound(f"subject {name!r} not found", subject=name)
        rows = subject.versions.all()
        if number == LATEST:
            # Confluent: "latest" names the latest live version (or, permanently, the latest one).
            live_first = rows.filter(deleted_at__isnull=True) if not permanent else rows
            row = live_first.order_by("-version").first()
        else:
            row = rows.filter(version=number).first()
        if row is None:
            raise VersionNotFound(
                f"version {number} of subject {name!r} not found", subject=name, version=number
            )
        if not permanent:
            if row.deleted_at is not None:
                raise VersionSoftDeleted(
                    f"version {row.version} of subject {name!r} was soft deleted; "
                    "delete it with permanent=true to remove it",
                    subject=name,
                    version=row.version,
                )
            row.deleted_at = timezone.now()
            row.save(update_fields=["deleted_at"])
        else:
            if row.deleted_at is None:
                raise VersionNotSoftDeleted(
                    f"version {row.version} of subject {name!r} must be soft deleted before it is "
                    "deleted permanently",
                    subject=name,
                    version=row.version,
                )
            row.delete()
            _drop_orphans({row.schema_id})
        _changed()
        return row.version


def set_subject_config(name: str, *, compatibility: Any = _UNSET, validate: Any = _UNSET) -> Subject:
    """Set a subject's compatibility (None = use the global one) and/or validation switch.

    A subject without versions may be configured before its first registration.
    """
    check_subject_name(name)
    changes: dict[str, Any] = {}
    if compatibility is not _UNSET:
        changes["compatibility"] = None if compatibility is None else check_mode(compatibility)
    if validate is not _UNSET:
        if not isinstance(validate, bool):
            raise InvalidRequest(
                f"validate must be true or false, got {str(validate)[:40]!r}", field="validate"
            )
        changes["validate"] = validate
    with transaction.atomic():
        subject, _ = Subject.objects.get_or_create(name=name)
        for key, value in changes.items():
            setattr(subject, key, value)
        if changes:
            subject.save(update_fields=list(changes))
            _changed()
    return subject


def subject_compatibility(name: str) -> str:
    """The subject's own compatibility setting; ``SubjectConfigNotFound`` when it has none."""
    subject = find_subject(name)
    if subject is None or not subject.compatibility:
        raise SubjectConfigNotFound(
            f"subject {name!r} has no compatibility setting of its own (the global one applies)", subject=name
        )
    return subject.compatibility


def delete_subject_config(name: str) -> str:
    """Remove the subject's own compatibility setting; returns it."""
    previous = subject_compatibility(name)
    set_subject_config(name, compatibility=None)
    return previous
