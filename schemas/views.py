"""REST endpoints of the schema registry under ``/api/v1/schemas`` (the Confluent shape is in
``schemas/confluent.py``).

Reading (and checking a candidate's compatibility) needs ``events:read``; registering, deleting
and configuring need ``admin``. Schemas travel as JSON objects, not as strings.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from flunq_events import params
from flunq_events.errors import InvalidRequest
from flunq_events.openapi import ErrorSerializer
from schemas import services
from schemas.models import SchemaVersion, Subject

# 422: a subject name no subject can have (control characters, "/", ...).
ERRORS = {
    400: ErrorSerializer,
    401: ErrorSerializer,
    403: ErrorSerializer,
    404: ErrorSerializer,
    422: ErrorSerializer,
}
CHANGE_ERRORS = {**ERRORS, 409: ErrorSerializer, 422: ErrorSerializer}


def version_as_dict(row: SchemaVersion, *, with_schema: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "subject": row.subject.name,
        "version": row.version,
        "id": row.schema_id,
        "created_at": row.created_at,
        "deleted": row.deleted_at is not None,
    }
    if with_schema:
        out["schema"] = row.schema.document
    return out


def subject_as_dict(subject: Subject, *, include_deleted: bool = False) -> dict[str, Any]:
    versions = services.versions_of(subject, include_deleted=include_deleted)
    live = [row.version for row in versions if row.deleted_at is None]
    return {
        "subject": subject.name,
        "latest_version": live[-1] if live else None,
        "versions": [row.version for row in versions],
        "compatibility": subject.compatibility,
        "effective_compatibility": services.effective_compatibility(subject),
        "validate": subject.validate,
        "created_at": subject.created_at,
    }


def _body(request, allowed: set[str], required: set[str]) -> dict[str, Any]:
    body = request.data
    if not isinstance(body, dict):
        raise InvalidRequest(f"the body must be a JSON object with {', '.join(sorted(required or allowed))}")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidRequest(
            f"unknown field(s): {', '.join(unknown)}", unknown=unknown, allowed=sorted(allowed)
        )
    missing = sorted(name for name in required if name not in body)
    if missing:
        raise InvalidRequest(f"missing field(s): {', '.join(missing)}", missing=missing)
    return body


def _register(subject: str, document: Any) -> Response:
    result = services.register(subject, document)
    return Response(
        {**version_as_dict(result.version), "created": result.created}, status=201 if result.created else 200
    )


@extend_schema(tags=["schemas"])
class SubjectsView(APIView):
    required_scopes = {"GET": "events:read", "POST": "admin"}

    @extend_schema(
        summary="List subjects",
        operation_id="api_v1_schemas_list",
        parameters=[
            OpenApiParameter("prefix", str),
            OpenApiParameter("after", str, description="cursor: subjects after this name"),
            OpenApiParameter("limit", int),
            OpenApiParameter(
                "include_deleted", bool, description="also subjects whose versions are all soft deleted"
            ),
        ],
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def get(self, request):
        query = request.query_params
        params.reject_unknown(query, ["prefix", "after", "limit", "include_deleted"])
        limit = params.limit(query)
        include_deleted = params.boolean(query, "include_deleted")
        subjects = services.list_subjects(
            include_deleted=include_deleted, prefix=params.text(query, "prefix")
        )
        if (after := params.text(query, "after")) is not None:
            subjects = subjects.filter(name__gt=after)
        page = list(subjects[:limit])
        return Response(
            {
                "subjects": [subject_as_dict(subject, include_deleted=include_deleted) for subject in page],
                "next_after": page[-1].name if len(page) == limit else None,
            }
        )

    @extend_schema(
        summary="Register a schema under a subject (created if needed)",
        description='Body: {"subject": name, "schema": {JSON Schema}}. 201 with the new version; 200 '
        "when the subject already has this schema; 409 with the differences when incompatible.",
        request=OpenApiTypes.OBJECT,
        responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT, **CHANGE_ERRORS},
    )
    def post(self, request):
        params.reject_unknown(request.query_params, [])
        body = _body(request, {"subject", "schema"}, {"subject", "schema"})
        return _register(services.check_subject_name(body["subject"]), body["schema"])


@extend_schema(tags=["schemas"])
class SubjectDetailView(APIView):
    required_scopes = {"GET": "events:read", "DELETE": "admin"}

    @extend_schema(
        summary="A subject: its versions and settings",
        parameters=[OpenApiParameter("include_deleted", bool)],
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def get(self, request, subject: str):
        params.reject_unknown(request.query_params, ["include_deleted"])
        include_deleted = params.boolean(request.query_params, "include_deleted")
        row = services.get_subject(subject, include_deleted=include_deleted)
        return Response(subject_as_dict(row, include_deleted=include_deleted))

    @extend_schema(
        summary="Delete a subject: soft (every version), or permanent once soft deleted",
        parameters=[OpenApiParameter("permanent", bool)],
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def delete(self, request, subject: str):
        params.reject_unknown(request.query_params, ["permanent"])
        permanent = params.boolean(request.query_params, "permanent")
        versions = services.delete_subject(subject, permanent=permanent)
        return Response({"subject": subject, "deleted_versions": versions, "permanent": permanent})


@extend_schema(tags=["schemas"])
class SubjectVersionsView(APIView):
    required_scopes = {"GET": "events:read", "POST": "admin"}

    @extend_schema(
        summary="The versions of a subject",
        operation_id="api_v1_schemas_versions_list",
        parameters=[OpenApiParameter("include_deleted", bool)],
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def get(self, request, subject: str):
        params.reject_unknown(request.query_params, ["include_deleted"])
        include_deleted = params.boolean(request.query_params, "include_deleted")
        row = services.get_subject(subject, include_deleted=include_deleted)
        versions = services.versions_of(row, include_deleted=include_deleted)
        return Response(
            {"subject": subject, "versions": [version_as_dict(v, with_schema=False) for v in versions]}
        )

    @extend_schema(
        summary="Register a new version of this subject",
        description='Body: {"schema": {JSON Schema}}.',
        request=OpenApiTypes.OBJECT,
        responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT, **CHANGE_ERRORS},
    )
    def post(self, request, subject: str):
        params.reject_unknown(request.query_params, [])
        body = _body(request, {"schema"}, {"schema"})
        return _register(services.check_subject_name(subject), body["schema"])


@extend_schema(tags=["schemas"])
class VersionDetailView(APIView):
    required_scopes = {"GET": "events:read", "DELETE": "admin"}

    @extend_schema(
        summary="One version (a number or 'latest') with its schema",
        parameters=[OpenApiParameter("include_deleted", bool)],
        responses={200: OpenApiTypes.OBJECT, **ERRORS, 422: ErrorSerializer},
    )
    def get(self, request, subject: str, version: str):
        params.reject_unknown(request.query_params, ["include_deleted"])
        include_deleted = params.boolean(request.query_params, "include_deleted")
        return Response(
            version_as_dict(services.get_version(subject, version, include_deleted=include_deleted))
        )

    @extend_schema(
        summary="Delete a version: soft, or permanent once soft deleted",
        parameters=[OpenApiParameter("permanent", bool)],
        responses={200: OpenApiTypes.OBJECT, **ERRORS, 422: ErrorSerializer},
    )
    def delete(self, request, subject: str, version: str):
        params.reject_unknown(request.query_params, ["permanent"])
        permanent = params.boolean(request.query_params, "permanent")
        number = services.delete_version(subject, version, permanent=permanent)
        return Response({"subject": subject, "deleted_version": number, "permanent": permanent})


@extend_schema(tags=["schemas"])
class CompatibilityView(APIView):
    required_scopes = {"POST": "events:read"}

    @extend_schema(
        summary="Check a candidate schema's compatibility without registering it",
        description='Body: {"schema": {...}, "version": n|"latest" (optional: compare with that '
        'version only), "mode": a compatibility mode (optional: instead of the subject\'s)}.',
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT, **ERRORS, 422: ErrorSerializer},
    )
    def post(self, request, subject: str):
        params.reject_unknown(request.query_params, [])
        body = _body(request, {"schema", "version", "mode"}, {"schema"})
        verdict = services.check_compatibility(
            services.check_subject_name(subject),
            body["schema"],
            version=body.get("version"),
            mode=body.get("mode"),
        )
        return Response({"subject": subject, **verdict.as_dict()})


@extend_schema(tags=["schemas"])
class ConfigView(APIView):
    required_scopes = {"GET": "events:read", "PUT": "admin"}

    def _out(self, subject: Subject | None, name: str) -> dict[str, Any]:
        return {
            "subject": name,
            "compatibility": subject.compatibility if subject else None,
            "effective_compatibility": services.effective_compatibility(subject),
            "validate": subject.validate if subject else True,
        }

    @extend_schema(summary="A subject's settings", responses={200: OpenApiTypes.OBJECT, **ERRORS})
    def get(self, request, subject: str):
        params.reject_unknown(request.query_params, [])
        return Response(self._out(services.find_subject(subject), subject))

    @extend_schema(
        summary="Change a subject's settings",
        description='Body: {"compatibility": a mode, or null to follow the global setting; "validate": '
        "true|false}. A subject may be configured before its first version.",
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT, **ERRORS, 422: ErrorSerializer},
    )
    def put(self, request, subject: str):
        params.reject_unknown(request.query_params, [])
        body = _body(request, {"compatibility", "validate"}, set())
        if not body:
            raise InvalidRequest("give compatibility and/or validate")
        row = services.set_subject_config(subject, **body)
        return Response(self._out(row, subject))
