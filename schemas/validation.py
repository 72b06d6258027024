"""Validate the ``data`` of appended events against the schema registered for their type.

``validate_events`` runs in ``events.services.before_append`` (registered by ``SchemasConfig``),
so every append path (REST, gRPC, admin, commands) is covered and a refused batch writes nothing.

Which schema: the subject named like the event's ``type``, latest live version, unless the
event's ``dataschema`` names a version of ours: a URI (relative, or absolute with any host) whose
path ends in ``/api/v1/schemas/{subject}/versions/{n}`` or
``/schema-registry/subjects/{subject}/versions/{n}``. Such a ``dataschema`` must name the event's
own type as subject and a live version, else the event is refused. Any other ``dataschema`` is
kept as given and does not change the choice. Subjects with validation off are skipped; types
without a subject are accepted unless ``SCHEMA_REQUIRED`` is on.

What fails: each error names the JSON pointer into the batch (``/0/data/amount``), the failing
keyword, the message, and the schema location; the whole batch is refused with 422
(``ValidationFailed``). An event without data is validated as ``null``; an event with binary data
(``data_base64``) cannot be checked against a JSON schema and is refused.

Engines: ``jsonschema-rs`` (offline: it never retrieves; formats are annotations) decides and
lists every error. Its regular expressions never backtrack without limit (``schemas.patterns``),
where Python's ``re`` in ``jsonschema`` can take minutes on ``^(a+)+$`` holding the GIL.
Registration refuses schemas jsonschema-rs cannot compile; rows stored before that check are
validated by ``jsonschema`` (a ``referencing`` registry that holds only the schema itself, so
remote ``$ref``s are never fetched), and a schema it cannot evaluate refuses the event (422).

Cost, kept small by two caches per process:

- compiled validators by schema id (a schema row never changes);
- the latest version of every subject, read in one query and trusted for ``SCHEMA_CACHE_SECONDS``
  (default 1 s). Changes made in this process drop it at commit (``invalidate``); another
  process sees them within that time.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import jsonschema_rs
import orjson
import referencing
import referencing.exceptions
from django.conf import settings
from django.db import connection

from events.cloudevents import NewEvent
from flunq_events.errors import ValidationFailed
from flunq_events.numbers import is_digits
from schemas import documents, patterns

MAX_REPORTED_ERRORS = 100
MAX_VALIDATORS = 2048
_DATASCHEMA = re.compile(
    r"/(?:api/v1/schemas|schema-registry/subjects)/(?P<subject>[^/]+)/versions/(?P<version>[^/]+)/?$"
)


@dataclass(frozen=True, slots=True)
class Target:
    """The schema an event's data is checked against."""

    subject: str
    version: int
    schema_id: int
    validate: bool


_lock = threading.Lock()
_latest: dict[str, Target] | None = None
_latest_at = 0.0
_named: dict[tuple[str, int], tuple[float, Target | None]] = {}
_validators: dict[int, Any] = {}


def invalidate() -> None:
    """Forget what this process knows about subjects and versions (validators stay: immutable)."""
    global _latest
    with _lock:
        _latest = None
        _named.clear()


def _load_latest() -> dict[str, Target]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT ON (s.id) s.name, v.version, v.schema_id, s.validate
            FROM flunq_schema_subjects s
            JOIN flunq_schema_versions v ON v.subject_id = s.id AND v.deleted_at IS NULL
            ORDER BY s.id, v.version DESC
            """
        )
        return {
            name: Target(name, version, schema_id, on) for name, version, schema_id, on in cursor.fetchall()
        }


def latest_targets() -> dict[str, Target]:
    """Subject name -> its latest live version, at most ``SCHEMA_CACHE_SECONDS`` old."""
    global _latest, _latest_at
    now = time.monotonic()
    current = _latest
    if current is not None and now - _latest_at < settings.SCHEMA_CACHE_SECONDS:
        return current
    loaded = _load_latest()
    with _lock:
        _latest, _latest_at = loaded, now
    return loaded


def _named_target(subject: str, version: int) -> Target | None:
    now = time.monotonic()
    hit = _named.get((subject, version))
    if hit is not None and hit[0] > now:
        return hit[1]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT v.schema_id, s.validate FROM flunq_schema_versions v
            JOIN flunq_schema_subjects s ON s.id = v.subject_id
            WHERE s.name = %s AND v.version = %s AND v.deleted_at IS NULL
            """,
            [subject, version],
        )
        row = cursor.fetchone()
    target = Target(subject, version, row[0], row[1]) if row else None
    with _lock:
        if len(_named) > 10_000:
            _named.clear()
        _named[(subject, version)] = (now + settings.SCHEMA_CACHE_SECONDS, target)
    return target


@dataclass(frozen=True, slots=True)
class Failure:
    """One validation error: where in the data, the keyword, the message, where in the schema."""

    path: tuple
    keyword: str | None
    message: str
    schema_path: tuple


@dataclass(frozen=True, slots=True)
class Compiled:
    """A schema's validators: ``fast`` (jsonschema-rs; None when it cannot compile the schema)
    and ``full`` (jsonschema, used only for those)."""

    fast: Any
    full: Any

    def errors(self, data: Any) -> list[Failure]:
        if self.fast is not None:
            # jsonschema-rs decides and lists: its regular expressions never backtrack without
            # limit, where Python's re (in jsonschema) can take minutes holding the GIL.
            if self.fast.is_valid(data):
                return []
            return [
                Failure(tuple(error.instance_path), _keyword(error.kind.name), error.message,
                        tuple(error.schema_path))
                for error in self.fast.iter_errors(data)
            ]  # fmt: skip
        return [
            Failure(
                tuple(error.absolute_path), error.validator, error.message, tuple(error.absolute_schema_path)
            )
            for error in self.full.iter_errors(data)
        ]


def _keyword(name: str) -> str | None:
    return None if name == "falseSchema" else name


def compile_schema(document: dict) -> Compiled:
    # An empty registry and no retrieve function: a $ref outside the document is Unresolvable.
    full = documents.validator_class(document)(document, registry=referencing.Registry())
    try:
        fast = jsonschema_rs.validator_for(
            document, offline=True, validate_formats=False, pattern_options=patterns.OPTIONS
        )
    except Exception:  # a schema stored before registration required jsonschema-rs to compile it
        fast = None
    return Compiled(fast, full)


def validator_for(schema_id: int) -> Compiled | None:
    """The compiled validators of a schema row, or None if the row is gone."""
    validator = _validators.get(schema_id)
    if validator is not None:
        return validator
    with connection.cursor() as cursor:
        cursor.execute("SELECT canonical FROM flunq_schemas WHERE id = %s", [schema_id])
        row = cursor.fetchone()
    if row is None:
        return None
    validator = compile_schema(orjson.loads(row[0]))
    with _lock:
        if len(_validators) >= MAX_VALIDATORS:
            _validators.clear()
        _validators[schema_id] = validator
    return validator


def named_version(event: NewEvent) -> tuple[str, str] | None:
    """(subject, version text) when ``dataschema`` names a version of this registry."""
    if not event.dataschema:
        return None
    match = _DATASCHEMA.search(urlsplit(event.dataschema).path)
    if match is None:
        return None
    return unquote(match["subject"]), unquote(match["version"])


def _pointer(index: int, parts) -> str:
    return f"/{index}/data" + documents.pointer(parts)


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _target_of(index: int, event: NewEvent, latest: dict[str, Target], errors: list[dict]) -> Target | None:
    named = named_version(event)
    if named is not None and named[1].lower() not in ("latest", "-1"):
        subject, version = named
        where = f"/{index}/dataschema"
        if subject != event.type:
            errors.append(
                {"index": index, "pointer": where, "keyword": "dataschema",
                 "message": f"dataschema names subject {subject[:100]!r}, but the event type is "
                            f"{event.type[:100]!r}; it must name a version of its own type's subject"}
            )  # fmt: skip
            return None
        number = int(version) if is_digits(version, 9) else None
        target = _named_target(subject, number) if number else None
        if target is None:
            errors.append(
                {"index": index, "pointer": where, "keyword": "dataschema",
                 "message": f"dataschema names version {version[:20]!r} of subject {subject[:100]!r}, "
                            "which is not a registered live version"}
            )  # fmt: skip
        return target
    target = latest.get(event.type)
    if target is None and settings.SCHEMA_REQUIRED:
        errors.append(
            {"index": index, "pointer": f"/{index}/type", "keyword": "type",
             "message": f"no schema is registered for event type {event.type[:100]!r}, and schemas are "
                        "required (SCHEMA_REQUIRED)"}
        )  # fmt: skip
    return target


def _check(index: int, event: NewEvent, target: Target, errors: list[dict]) -> None:
    validator = validator_for(target.schema_id)
    if validator is None:  # deleted a moment ago by another process
        invalidate()
        return
    label = {"subject": target.subject, "version": target.version}
    if event.data_base64 is not None:
        errors.append(
            {"index": index, "pointer": f"/{index}/data_base64", "keyword": None, **label,
             "message": f"binary data cannot be checked against the JSON schema of {target.subject!r}; "
                        "send JSON data"}
        )  # fmt: skip
        return
    data = event.data if event.has_data else None
    try:
        found = validator.errors(data)
    except referencing.exceptions.Unresolvable as exc:
        errors.append({"index": index, "pointer": f"/{index}/data", "keyword": "$ref", **label,
                       "message": f"the schema has a reference that does not resolve: {exc}"})  # fmt: skip
        return
    except RecursionError:
        # A schema registered before such schemas were refused: its $ref loops never end.
        errors.append({"index": index, "pointer": f"/{index}/data", "keyword": "$ref", **label,
                       "message": "the schema cannot be evaluated: it has an unguarded recursive $ref "
                                  "(it applies itself to the same data forever); register a fixed version"})  # fmt: skip
        return
    except (AttributeError, TypeError, LookupError, ValueError) as exc:
        # E.g. a $ref to a value that is not a schema, in a schema registered before those were refused.
        errors.append({"index": index, "pointer": f"/{index}/data", "keyword": "$ref", **label,
                       "message": f"the schema cannot be evaluated ({type(exc).__name__}: {_short(str(exc), 100)}); "
                                  "register a fixed version"})  # fmt: skip
        return
    for error in found:
        message = _short(error.message)
        if not event.has_data:
            message = f"the event has no data (validated as null): {message}"
        errors.append(
            {"index": index, "pointer": _pointer(index, error.path), "keyword": error.keyword,
             "message": message, "schema_pointer": documents.pointer(error.schema_path), **label}
        )  # fmt: skip


def validate_events(events: Sequence[NewEvent], streams: list[str]) -> None:
    """The ``before_append`` hook: raise ``ValidationFailed`` listing every error of the batch."""
    latest = latest_targets()
    if not latest and not settings.SCHEMA_REQUIRED and not any(event.dataschema for event in events):
        return
    errors: list[dict] = []
    unchecked = 0  # events not looked at once MAX_REPORTED_ERRORS errors are found
    for index, event in enumerate(events):
        target = _target_of(index, event, latest, errors)
        if target is not None and target.validate:
            _check(index, event, target, errors)
        if len(errors) >= MAX_REPORTED_ERRORS:
            unchecked = len(events) - index - 1
            break
    if errors:
        failed = len({error["index"] for error in errors})
        counted = f"at least {failed}" if unchecked else str(failed)
        first = errors[0]
        raise ValidationFailed(
            f"{counted} event(s) failed schema validation; first: {first['pointer']}: {first['message']}"
            + (f" (the first {MAX_REPORTED_ERRORS} errors are listed; {unchecked} events were not checked)"
               if unchecked else ""),
            errors=errors[:MAX_REPORTED_ERRORS],
        )  # fmt: skip
