"""The Confluent Schema Registry REST API, JSON Schema only, under ``/schema-registry/``.

Existing clients work unchanged, e.g. confluent-kafka's ``SchemaRegistryClient`` with
``{"url": "http://host:8081/schema-registry", "bearer.auth.credentials.source": "STATIC_TOKEN",
"bearer.auth.token": token, "bearer.auth.logical.cluster": "flunq"}`` (the cluster is ignored), or
with ``{"basic.auth.user.info": "any-name:" + token}``: HTTP basic auth whose password is an API
token. Reading needs ``events:read``; registering, deleting and configuring need ``admin``.

Endpoints: ``GET /subjects``, ``POST /subjects/{s}`` (look up), ``DELETE /subjects/{s}``,
``GET|POST /subjects/{s}/versions``, ``GET|DELETE /subjects/{s}/versions/{v}``,
``GET /subjects/{s}/versions/{v}/schema``, ``GET /schemas/ids/{id}`` (and ``/subjects``,
``/versions``, ``/schema``), ``GET /schemas/types``, ``POST /compatibility/subjects/{s}/versions[/{v}]``,
``GET|PUT|DELETE /config[/{s}]``, ``GET /mode[/{s}]`` (always READWRITE).

Bodies: ``application/vnd.schemaregistry.v1+json``, ``application/vnd.schemaregistry+json`` or
``application/json``; answers in the first of those the client accepts. Errors:
``{"error_code": 40401, "message": ...}`` with Confluent's codes (``schemas/errors.py``).
A registration without ``schemaType`` means Avro to Confluent, so it is refused (42201) here.
Query parameters this registry does not use (``normalize``, ``format``, ...) are ignored, as
Confluent does; the ones it uses are checked.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import authentication, exceptions
from rest_framework.response import Response
from rest_framework.views import APIView

from access.authentication import BearerTokenAuthentication
from access.tokens import authenticate_token
from flunq_events import api, params
from flunq_events.errors import InvalidRequest, ServiceError
from flunq_events.jsonutil import JSONError, loads_strict
from schemas import services
from schemas.errors import InvalidCompatibility, InvalidSchema, OperationNotPermitted
from schemas.models import SchemaVersion

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
READ = "events:read"
SCHEMA_TYPE = "JSON"
logger = logging.getLogger(__name__)


class RegistryRenderer(api.JSONRenderer):
    media_type = MEDIA_TYPE


class GenericRegistryRenderer(api.JSONRenderer):
    media_type = "application/vnd.schemaregistry+json"


class BasicTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Basic base64(name:token)``: the password is an API token, the name is ignored."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            _, _, token = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise exceptions.AuthenticationFailed("malformed basic credentials") from None
        principal = authenticate_token(token)
        if principal is None:
            raise exceptions.AuthenticationFailed("unknown or revoked token (the basic auth password)")
        return principal, token

    def authenticate_header(self, request) -> str:
        return 'Basic realm="flunq"'


_STATUS_CODES = {401: 40101, 403: 40301, 500: 50001}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    response = api.exception_handler(exc, context)
    if response is None:
        if settings.DEBUG:
            return None  # Django's debug page
        # An unexpected error: logged with its traceback, answered in the registry's shape.
        request = context.get("request")
        where = f"{request.method} {request.path}" if request is not None else "a schema registry request"
        logger.error("internal error in %s", where, exc_info=exc)
        return Response({"error_code": 50001, "message": "internal error; see the server log"}, status=500)
    code = getattr(exc, "registry_code", None) or _STATUS_CODES.get(
        response.status_code, response.status_code
    )
    message = response.data.get("message", "") if isinstance(response.data, dict) else str(response.data)
    if isinstance(response.data, dict) and response.data.get("fields"):
        message = f"{message}: {response.data['fields']}"
    response.data = {"error_code": code, "message": message}
    return response


@extend_schema(exclude=True)
class RegistryView(APIView):
    renderer_classes = [RegistryRenderer, GenericRegistryRenderer, api.JSONRenderer]
    parser_classes = [api.JSONParser]
    # Basic first: the bearer scheme refuses any other Authorization header outright.
    authentication_classes = [BasicTokenAuthentication, BearerTokenAuthentication]
    required_scopes = {"GET": READ, "HEAD": READ, "POST": "admin", "PUT": "admin", "DELETE": "admin"}

    def get_exception_handler(self):
        return exception_handler


def _body(request) -> dict[str, Any]:
    body = request.data
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


def _schema_of(request) -> dict:
    """The JSON Schema in a registration/lookup/compatibility body, parsed and checked."""
    body = _body(request)
    unknown = sorted(
        set(body) - {"schema", "schemaType", "references", "metadata", "ruleSet", "id", "version"}
    )
    if unknown:
        raise InvalidRequest(f"unrecognized field(s): {', '.join(unknown)}")
    schema_type = body.get("schemaType")
    if schema_type is None:
        raise InvalidSchema("schemaType is missing, which means AVRO; this registry holds JSON schemas only: "
                            "send \"schemaType\": \"JSON\"")  # fmt: skip
    if not isinstance(schema_type, str) or schema_type.upper() != SCHEMA_TYPE:
        raise InvalidSchema(f"schemaType {str(schema_type)[:40]!r} is not supported; this registry holds JSON "
                            "schemas only")  # fmt: skip
    if body.get("id") is not None or body.get("version") is not None:
        raise OperationNotPermitted("id and version can be chosen only in IMPORT mode, which this registry "
                                    "does not offer")  # fmt: skip
    if body.get("references"):
        raise InvalidSchema("schema references are not supported; use local $defs")
    for name in ("metadata", "ruleSet"):
        if body.get(name):
            raise InvalidSchema(f"{name} is not supported")
    text = body.get("schema")
    if not isinstance(text, str):
        raise InvalidSchema("schema must be a string holding a JSON Schema")
    if len(text) > 4 * settings.SCHEMA_MAX_BYTES:
        raise InvalidSchema(f"the schema string is {len(text)} characters; the limit is about "
                            f"{settings.SCHEMA_MAX_BYTES} bytes of JSON")  # fmt: skip
    try:
        document = loads_strict(text, max_depth=settings.SCHEMA_MAX_DEPTH)
    except JSONError as exc:
        raise InvalidSchema(f"schema is not valid JSON: {exc}") from None
    return document


def _registered(row: SchemaVersion) -> dict[str, Any]:
    return {
        "subject": row.subject.name,
        "version": row.version,
        "id": row.schema_id,
        "schemaType": SCHEMA_TYPE,
        "schema": row.schema.canonical,
    }


def _page(items: list, query) -> list:
    offset = params.integer(query, "offset", 0)
    limit = params.integer(query, "limit", -1, minimum=-1)
    items = items[offset:]
    return items if limit is None or limit < 0 else items[:limit]


def _flag(query, name: str) -> bool:
    return params.boolean(query, name)


class RootView(RegistryView):
    def get(self, request):
        return Response({})


class SubjectsView(RegistryView):
    def get(self, request):
        query = request.query_params
        deleted_only = _flag(query, "deleted_only")
        rows = services.list_subjects(
            include_deleted=deleted_only or _flag(query, "deleted"),
            prefix=params.text(query, "subjectPrefix"),
        )
        names = [row.name for row in rows]
        if deleted_only:
            live = set(services.list_subjects().values_list("name", flat=True))
            names = [name for name in names if name not in live]
        return Response(_page(names, query))


class SubjectView(RegistryView):
    required_scopes = {**RegistryView.required_scopes, "POST": READ}

    def post(self, request, subject: str):
        document = _schema_of(request)
        row = services.lookup(subject, document, include_deleted=_flag(request.query_params, "deleted"))
        return Response(_registered(row))

    def delete(self, request, subject: str):
        return Response(services.delete_subject(subject, permanent=_flag(request.query_params, "permanent")))


class SubjectVersionsView(RegistryView):
    def get(self, request, subject: str):
        query = request.query_params
        deleted_only = _flag(query, "deleted_only")
        row = services.get_subject(subject, include_deleted=deleted_only or _flag(query, "deleted"))
        versions = services.versions_of(row, include_deleted=deleted_only or _flag(query, "deleted"))
        numbers = [v.version for v in versions if not deleted_only or v.deleted_at is not None]
        return Response(_page(numbers, query))

    def post(self, request, subject: str):
        document = _schema_of(request)
        result = services.register(services.check_subject_name(subject), document)
        return Response({"id": result.version.schema_id})


class VersionView(RegistryView):
    def get(self, request, subject: str, version: str):
        row = services.get_version(subject, version, include_deleted=_flag(request.query_params, "deleted"))
        return Response(_registered(row))

    def delete(self, request, subject: str, version: str):
        return Response(
            services.delete_version(subject, version, permanent=_flag(request.query_params, "permanent"))
        )


class VersionSchemaView(RegistryView):
    def get(self, request, subject: str, version: str):
        row = services.get_version(subject, version, include_deleted=_flag(request.query_params, "deleted"))
        return Response(row.schema.document)


class SchemaByIdView(RegistryView):
    def get(self, request, schema_id: str):
        row = services.get_schema(schema_id)
        return Response({"schemaType": SCHEMA_TYPE, "schema": row.canonical})


class SchemaByIdRawView(RegistryView):
    def get(self, request, schema_id: str):
        return Response(services.get_schema(schema_id).document)


class SchemaSubjectsView(RegistryView):
    def get(self, request, schema_id: str):
        pairs = services.subjects_of_schema(
            services.get_schema(schema_id), include_deleted=_flag(request.query_params, "deleted")
        )
        return Response(_page(sorted({name for name, _ in pairs}), request.query_params))


class SchemaVersionsView(RegistryView):
    def get(self, request, schema_id: str):
        pairs = services.subjects_of_schema(
            services.get_schema(schema_id), include_deleted=_flag(request.query_params, "deleted")
        )
        return Response(_page([{"subject": name, "version": v} for name, v in pairs], request.query_params))


class SchemaTypesView(RegistryView):
    def get(self, request):
        return Response([SCHEMA_TYPE])


class CompatibilityView(RegistryView):
    required_scopes = {**RegistryView.required_scopes, "POST": READ}

    def post(self, request, subject: str, version: str | None = None):
        document = _schema_of(request)
        subject = services.check_subject_name(subject)
        if version is not None:
            services.parse_version(version)
        verdict = services.check_compatibility(subject, document, version=version)
        body: dict[str, Any] = {"is_compatible": verdict.compatible}
        if _flag(request.query_params, "verbose"):
            body["messages"] = verdict.messages
        return Response(body)


def _compatibility_of(body: dict[str, Any]) -> str:
    unknown = sorted(set(body) - {"compatibility", "compatibilityLevel"})
    if unknown:
        raise InvalidRequest(f"unsupported config field(s): {', '.join(unknown)}; only compatibility is kept")
    value = body.get("compatibility", body.get("compatibilityLevel"))
    if value is None:
        raise InvalidCompatibility("compatibility is missing")
    return services.check_mode(value)


class GlobalConfigView(RegistryView):
    def get(self, request):
        return Response({"compatibilityLevel": services.global_compatibility()})

    def put(self, request):
        mode = services.set_global_compatibility(_compatibility_of(_body(request)))
        return Response({"compatibility": mode})

    def delete(self, request):
        return Response({"compatibilityLevel": services.reset_global_compatibility()})


class SubjectConfigView(RegistryView):
    def get(self, request, subject: str):
        if _flag(request.query_params, "defaultToGlobal"):
            return Response(
                {"compatibilityLevel": services.effective_compatibility(services.find_subject(subject))}
            )
        return Response({"compatibilityLevel": services.subject_compatibility(subject)})

    def put(self, request, subject: str):
        mode = _compatibility_of(_body(request))
        services.set_subject_config(subject, compatibility=mode)
        return Response({"compatibility": mode})

    def delete(self, request, subject: str):
        return Response({"compatibilityLevel": services.delete_subject_config(subject)})


class ModeView(RegistryView):
    def get(self, request, subject: str | None = None):
        return Response({"mode": "READWRITE"})


class NoRouteView(RegistryView):
    """Any other path under the prefix: a 404 in the registry's error shape."""

    authentication_classes = []
    permission_classes = []

    def _missing(self, request, rest: str = ""):
        raise NoRoute(f"no schema registry endpoint {request.method} {request.path}")

    get = post = put = delete = patch = _missing


class NoRoute(ServiceError):
    code = "not_found"
    http_status = 404
