"""The ``flunq.events.v1.Snapshots`` service: the snapshot endpoints of the REST API over gRPC."""

from __future__ import annotations

from django.conf import settings

from access import tenancy
from access.principal import Principal
from flunq_events.errors import InvalidRequest
from grpc_api import convert
from grpc_api.generated.flunq.events.v1 import events_pb2 as pb
from grpc_api.rpc import DatabaseThreads, unary
from snapshots import selectors, services


class Snapshots:
    def __init__(self, threads: DatabaseThreads) -> None:
        self.threads = threads

    @unary("events:write")
    def SaveSnapshot(self, request: pb.SaveSnapshotRequest, principal: Principal) -> pb.SaveSnapshotResponse:
        stream = convert.text(request.stream, "stream", required=True)
        tenancy.check_stream(principal, stream)
        if not request.state_json:
            raise InvalidRequest(
                "state_json is required: the aggregate's state as JSON text", field="state_json"
            )
        state = convert.json_text(request.state_json, "state_json")
        snapshot, created = services.save_snapshot(
            stream,
            version=request.version,
            state=state,
            type=request.type if request.HasField("type") else None,
        )
        return pb.SaveSnapshotResponse(
            snapshot=convert.snapshot(selectors.snapshot_as_dict(snapshot)), created=created
        )

    @unary("events:read")
    def GetLatestSnapshot(self, request: pb.GetLatestSnapshotRequest, principal: Principal) -> pb.Snapshot:
        stream = convert.text(request.stream, "stream", required=True)
        tenancy.check_stream(principal, stream)
        snapshot = selectors.require_latest_snapshot(stream, type=convert.optional_text(request, "type"))
        return convert.snapshot(selectors.snapshot_as_dict(snapshot))

    @unary("events:read")
    def ListSnapshots(
        self, request: pb.ListSnapshotsRequest, principal: Principal
    ) -> pb.ListSnapshotsResponse:
        stream = convert.text(request.stream, "stream", required=True)
        tenancy.check_stream(principal, stream)
        snapshots = selectors.list_snapshots(
            stream, type=convert.optional_text(request, "type"), limit=settings.PAGE_SIZE_MAX
        )
        return pb.ListSnapshotsResponse(
            snapshots=[convert.snapshot(selectors.snapshot_as_dict(s)) for s in snapshots]
        )

    @unary("events:read")
    def GetStreamState(self, request: pb.GetStreamStateRequest, principal: Principal) -> pb.StreamState:
        stream = convert.text(request.stream, "stream", required=True)
        tenancy.check_stream(principal, stream)
        limit = convert.limit(request.limit, default=settings.PAGE_SIZE_MAX)
        state = selectors.stream_state(stream, type=convert.optional_text(request, "type"), limit=limit)
        return pb.StreamState(
            stream=stream,
            snapshot=convert.snapshot(selectors.snapshot_as_dict(state.snapshot)) if state.snapshot else None,
            events=[convert.recorded(e) for e in tenancy.visible_events(principal, state.events)],
            last_version=state.stream.last_version,
            next_version=state.next_version,
        )
