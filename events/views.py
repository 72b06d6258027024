"""REST endpoints of the log: append, read the global log, read one event, read/append a stream."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from access import tenancy
from events import horizon, selectors, services
from events.requests import events_from_request
from flunq_events import params
from flunq_events.errors import InvalidRequest
from flunq_events.openapi import (
    CloudEventSerializer,
    ErrorSerializer,
    EventBatchSerializer,
    EventPageSerializer,
    StoredEventSerializer,
    StreamEventsSerializer,
)

ERRORS = {400: ErrorSerializer, 401: ErrorSerializer, 403: ErrorSerializer}
# One event in, the stored event out; a batch in, {"events": [...]} out.
APPENDED = PolymorphicProxySerializer(
    component_name="Appended",
    serializers=[StoredEventSerializer, EventBatchSerializer],
    resource_type_field_name=None,
)
APPEND_RESPONSES = {
    201: APPENDED,
    200: APPENDED,
    409: ErrorSerializer,
    410: ErrorSerializer,
    413: ErrorSerializer,
    415: ErrorSerializer,
    422: ErrorSerializer,
    **ERRORS,
}
FILTER_PARAMS = [
    "type", "source", "subject", "stream", "category", "tenantid", "workflowid", "executionid",
    "taskid", "correlationid", "since", "until",
]  # fmt: skip
LIST_PARAMS = ["after", "limit", "min_position", *FILTER_PARAMS]


def event_filter(query) -> selectors.EventFilter:
    # Repeatable and comma-separated; each value checked like any text parameter.
    values = [params.text({"type": value}, "type") for value in query.getlist("type")]
    types = [t.strip() for value in values for t in value.split(",") if t.strip()]
    return selectors.EventFilter(
        types=selectors.check_type_patterns(types, "type"),
        since=params.moment(query, "since"),
        until=params.moment(query, "until"),
        **{name: params.text(query, name) for name in (*selectors.EventFilter.EQUALITY, "category")},
    )


def append_response(request, result: services.AppendResult, batch: bool) -> Response:
    stored = [item.as_cloudevent() for item in result.events]
    status = 200 if result.duplicate else 201
    return Response({"events": stored} if batch else stored[0], status=status)


@extend_schema(tags=["events"])
class EventsView(APIView):
    required_scopes = {"GET": "events:read", "POST": "events:write"}

    @extend_schema(
        summary="Read the global log in position order",
        operation_id="api_v1_events_list",
        parameters=[
            OpenApiParameter("after", int, description="cursor: return events after this position"),
            OpenApiParameter("limit", int),
            OpenApiParameter("min_position", int, description="wait (bounded) until the horizon reaches it"),
            OpenApiParameter(
                "type", str, description="exact type or prefix wildcard like workflow.*; repeatable"
            ),
            *[OpenApiParameter(name, str) for name in FILTER_PARAMS[1:-2]],
            OpenApiParameter("since", str, description="RFC 3339; recordedtime >= since"),
            OpenApiParameter("until", str, description="RFC 3339; recordedtime < until"),
        ],
        responses={200: EventPageSerializer, **ERRORS},
    )
    def get(self, request):
        query = request.query_params
        params.reject_unknown(query, LIST_PARAMS)
        after = params.integer(query, "after", 0)
        limit = params.limit(query)
        min_position = params.integer(query, "min_position")
        filter_ = tenancy.scope_filter(request.user, event_filter(query))
        upper = None
        if min_position is not None:
            upper = horizon.wait_for(min_position, settings.MIN_POSITION_WAIT_SECONDS)
        page = selectors.read_all(after, limit, filter_, horizon=upper)
        next_query = query.copy()
        next_query["after"] = str(page.next_after)
        next_query.pop("min_position", None)
        return Response(
            {
                "events": page.events,
                "next_after": page.next_after,
                "horizon": page.horizon,
                "next": f"{request.path}?{urlencode(sorted(next_query.items()))}",
            },
            headers={"X-Flunq-Horizon": str(page.horizon)},
        )

    @extend_schema(
        summary="Append one event, a binary-mode event or a batch",
        description=(
            "Structured mode (application/cloudevents+json or application/json), binary mode "
            "(ce-* headers, body = data) or a batch (application/cloudevents-batch+json or a JSON "
            "array). The stream is derived from the event unless ?stream= is given. 201 when "
            "written; 200 when every event was stored already (idempotent retry). One event is "
            'answered with the stored event, a batch with {"events": [...]}.'
        ),
        parameters=[
            OpenApiParameter("stream", str),
            OpenApiParameter("expected_version", str, description="any | no_stream | stream_exists | N"),
        ],
        request={
            "application/cloudevents+json": CloudEventSerializer,
            "application/json": CloudEventSerializer,
            "application/cloudevents-batch+json": CloudEventSerializer(many=True),
        },
        responses=APPEND_RESPONSES,
    )
    def post(self, request):
        params.reject_unknown(request.query_params, ["stream", "expected_version"])
        events, batch = events_from_request(request)
        result = services.append(
            events,
            stream=params.text(request.query_params, "stream"),
            expected_version=services.parse_expected_version(request.query_params.get("expected_version")),
            tenant=tenancy.tenant_of(request.user),
        )
        return append_response(request, result, batch)


@extend_schema(tags=["events"])
class EventDetailView(APIView):
    required_scopes = {"GET": "events:read"}

    @extend_schema(
        summary="One event by id",
        parameters=[OpenApiParameter("source", str, description="choose among sources that reused the id")],
        responses={200: StoredEventSerializer, 404: ErrorSerializer, 409: ErrorSerializer, **ERRORS},
    )
    def get(self, request, event_id: str):
        params.reject_unknown(request.query_params, ["source"])
        source = params.text(request.query_params, "source")
        return Response(tenancy.get_event(request.user, event_id, source))


@extend_schema(tags=["streams"])
class StreamEventsView(APIView):
    required_scopes = {"GET": "events:read", "POST": "events:write"}

    @extend_schema(
        summary="Read one stream in version order",
        parameters=[
            OpenApiParameter("from_version", int),
            OpenApiParameter("limit", int),
            OpenApiParameter("direction", str, enum=["forward", "backward"]),
        ],
        responses={200: StreamEventsSerializer, 404: ErrorSerializer, 410: ErrorSerializer, **ERRORS},
    )
    def get(self, request, stream: str):
        query = request.query_params
        params.reject_unknown(query, ["from_version", "limit", "direction"])
        direction = query.get("direction", "forward")
        if direction not in ("forward", "backward"):
            raise InvalidRequest("direction must be forward or backward", parameter="direction")
        tenancy.check_stream(request.user, stream)
        page = selectors.read_stream(
            stream,
            from_version=params.integer(query, "from_version"),
            limit=params.limit(query),
            backwards=direction == "backward",
        )
        events = tenancy.visible_events(request.user, page.events)
        return Response({"stream": stream, "events": events, "next_version": page.next_version})

    @extend_schema(
        summary="Append one event or a batch to this stream",
        parameters=[
            OpenApiParameter("expected_version", str, description="any | no_stream | stream_exists | N")
        ],
        request={
            "application/cloudevents+json": CloudEventSerializer,
            "application/json": CloudEventSerializer,
            "application/cloudevents-batch+json": CloudEventSerializer(many=True),
        },
        responses=APPEND_RESPONSES,
    )
    def post(self, request, stream: str):
        params.reject_unknown(request.query_params, ["expected_version"])
        events, batch = events_from_request(request)
        result = services.append(
            events,
            stream=stream,
            expected_version=services.parse_expected_version(request.query_params.get("expected_version")),
            tenant=tenancy.tenant_of(request.user),
        )
        return append_response(request, result, batch)
