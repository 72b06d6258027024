"""REST endpoints for streams: create, list, show, soft delete."""

from __future__ import annotations

from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from access import tenancy
from events.selectors import get_stream
from flunq_events import params
from flunq_events.errors import InvalidRequest
from flunq_events.openapi import (
    ErrorSerializer,
    StreamCreateSerializer,
    StreamListSerializer,
    StreamSerializer,
)
from streams.models import Stream
from streams.services import create_stream, delete_stream, stream_as_dict

ERRORS = {400: ErrorSerializer, 401: ErrorSerializer, 403: ErrorSerializer}


@extend_schema(tags=["streams"])
class StreamsView(APIView):
    required_scopes = {"GET": "events:read", "POST": "events:write"}

    @extend_schema(
        summary="List streams by name",
        operation_id="api_v1_streams_list",
        parameters=[
            OpenApiParameter("category", str),
            OpenApiParameter("prefix", str),
            OpenApiParameter("after", str, description="cursor: names after this one"),
            OpenApiParameter("limit", int),
            OpenApiParameter("include_deleted", bool),
        ],
        responses={200: StreamListSerializer, **ERRORS},
    )
    def get(self, request):
        query = request.query_params
        params.reject_unknown(query, ["category", "prefix", "after", "limit", "include_deleted"])
        limit = params.limit(query)
        streams = tenancy.visible_streams(request.user, Stream.objects.all())
        if not params.boolean(query, "include_deleted"):
            streams = streams.filter(deleted_at__isnull=True)
        if (category := params.text(query, "category")) is not None:
            streams = streams.filter(category=category)
        if (prefix := params.text(query, "prefix")) is not None:
            streams = streams.filter(name__startswith=prefix)
        if (after := params.text(query, "after")) is not None:
            streams = streams.filter(Q(name__gt=after))
        page = list(streams.order_by("name")[:limit])
        return Response(
            {
                "streams": [stream_as_dict(stream) for stream in page],
                "next_after": page[-1].name if len(page) == limit else None,
            }
        )

    @extend_schema(
        summary="Create a stream (or recreate a deleted one) with retention metadata",
        request=StreamCreateSerializer,
        responses={201: StreamSerializer, 409: ErrorSerializer, **ERRORS},
    )
    def post(self, request):
        params.reject_unknown(request.query_params, [])
        body = request.data
        if not isinstance(body, dict):
            raise InvalidRequest("the body must be a JSON object with a name")
        unknown = sorted(set(body) - {"name", "max_age", "max_count", "metadata"})
        if unknown:
            raise InvalidRequest(f"unknown field(s): {', '.join(unknown)}", unknown=unknown)
        name = body.get("name")
        if not isinstance(name, str):
            raise InvalidRequest("name is required and must be a string", field="name")
        stream, _ = create_stream(
            name, tenant=tenancy.tenant_of(request.user), **{k: v for k, v in body.items() if k != "name"}
        )
        return Response(stream_as_dict(stream), status=201)


@extend_schema(tags=["streams"])
class StreamDetailView(APIView):
    required_scopes = {"GET": "events:read", "DELETE": "admin"}

    @extend_schema(
        summary="One stream's state", responses={200: StreamSerializer, 404: ErrorSerializer, **ERRORS}
    )
    def get(self, request, stream: str):
        params.reject_unknown(request.query_params, [])
        tenancy.check_stream(request.user, stream)
        return Response(stream_as_dict(get_stream(stream, include_deleted=True)))

    @extend_schema(
        summary="Soft-delete a stream",
        description="Stream reads answer 410 and appends are refused until it is recreated with POST.",
        responses={204: None, 404: ErrorSerializer, **ERRORS},
    )
    def delete(self, request, stream: str):
        params.reject_unknown(request.query_params, [])
        tenancy.check_stream(request.user, stream)
        delete_stream(stream)
        return Response(status=204)
