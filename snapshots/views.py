"""REST endpoints for snapshots: save, latest, list, and a stream's state (snapshot + later events)."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from access import tenancy
from flunq_events import params
from flunq_events.errors import InvalidRequest
from flunq_events.openapi import ErrorSerializer
from snapshots import selectors, services
from snapshots.openapi import (
    SnapshotCreateSerializer,
    SnapshotListSerializer,
    SnapshotSerializer,
    StreamStateSerializer,
)

ERRORS = {400: ErrorSerializer, 401: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer,
          410: ErrorSerializer}  # fmt: skip
TYPE_PARAM = OpenApiParameter("type", str, description="only snapshots with this type label")
FIELDS = {"version", "state", "type"}


@extend_schema(tags=["snapshots"])
class SnapshotsView(APIView):
    required_scopes = {"GET": "events:read", "POST": "events:write"}

    @extend_schema(
        summary="List a stream's snapshots, newest version first",
        parameters=[TYPE_PARAM, OpenApiParameter("limit", int)],
        responses={200: SnapshotListSerializer, **ERRORS},
    )
    def get(self, request, stream: str):
        query = request.query_params
        params.reject_unknown(query, ["type", "limit"])
        tenancy.check_stream(request.user, stream)
        snapshots = selectors.list_snapshots(
            stream, type=params.text(query, "type"), limit=params.limit(query)
        )
        return Response({"stream": stream, "snapshots": [selectors.snapshot_as_dict(s) for s in snapshots]})

    @extend_schema(
        summary="Save a snapshot of the stream's aggregate state at a version",
        description=(
            "201 when stored, 200 when it replaced the snapshot of the same type at that version. "
            "409 when the version is beyond the stream's last version, or older than every "
            "snapshot of its type that retention keeps."
        ),
        request=SnapshotCreateSerializer,
        responses={201: SnapshotSerializer, 200: SnapshotSerializer, 409: ErrorSerializer, **ERRORS},
    )
    def post(self, request, stream: str):
        params.reject_unknown(request.query_params, [])
        body = request.data
        if not isinstance(body, dict):
            raise InvalidRequest("the body must be a JSON object with version and state")
        unknown = sorted(set(body) - FIELDS)
        if unknown:
            raise InvalidRequest(
                f"unknown field(s): {', '.join(unknown)}", unknown=unknown, allowed=sorted(FIELDS)
            )
        if "version" not in body:
            raise InvalidRequest("version is required", field="version")
        tenancy.check_stream(request.user, stream)
        snapshot, created = services.save_snapshot(
            stream, version=body["version"], state=body.get("state"), type=body.get("type")
        )
        return Response(selectors.snapshot_as_dict(snapshot), status=201 if created else 200)


@extend_schema(tags=["snapshots"])
class LatestSnapshotView(APIView):
    required_scopes = {"GET": "events:read"}

    @extend_schema(
        summary="The stream's snapshot at the highest version",
        parameters=[TYPE_PARAM],
        responses={200: SnapshotSerializer, **ERRORS},
    )
    def get(self, request, stream: str):
        params.reject_unknown(request.query_params, ["type"])
        tenancy.check_stream(request.user, stream)
        snapshot = selectors.require_latest_snapshot(stream, type=params.text(request.query_params, "type"))
        return Response(selectors.snapshot_as_dict(snapshot))


@extend_schema(tags=["snapshots"])
class StreamStateView(APIView):
    required_scopes = {"GET": "events:read"}

    @extend_schema(
        summary="The latest snapshot and the events after it, in one response",
        description="What rebuilding an aggregate needs. Without a snapshot, events start at the beginning.",
        parameters=[
            TYPE_PARAM,
            OpenApiParameter("limit", int, description="most events (default: the maximum)"),
        ],
        responses={200: StreamStateSerializer, **ERRORS},
    )
    def get(self, request, stream: str):
        query = request.query_params
        params.reject_unknown(query, ["type", "limit"])
        limit = params.integer(
            query, "limit", settings.PAGE_SIZE_MAX, minimum=1, maximum=settings.PAGE_SIZE_MAX
        )
        tenancy.check_stream(request.user, stream)
        state = selectors.stream_state(stream, type=params.text(query, "type"), limit=limit)
        return Response(
            {
                "stream": stream,
                "snapshot": selectors.snapshot_as_dict(state.snapshot) if state.snapshot else None,
                "events": tenancy.visible_events(request.user, state.events),
                "last_version": state.stream.last_version,
                "next_version": state.next_version,
            }
        )
