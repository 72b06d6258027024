"""The Snapshots service over gRPC: same rules as the REST endpoints."""

from __future__ import annotations

import json

import grpc
import pytest

from grpc_api.generated.flunq.events.v1 import events_pb2 as pb
from tests.grpc.helpers import cloudevent, failure

pytestmark = pytest.mark.django_db(transaction=True)


def test_save_latest_list_state(client, admin_client, api):
    client.events.AppendToStream(
        pb.AppendToStreamRequest(stream="execution-s1", events=[cloudevent(f"s1-{i}") for i in range(4)])
    )
    saved = client.snapshots.SaveSnapshot(
        pb.SaveSnapshotRequest(
            stream="execution-s1", version=1, state_json='{"steps": 2, "big": 9007199254740993}'
        )
    )
    assert saved.created and saved.snapshot.version == 1 and saved.snapshot.type == ""
    replaced = client.snapshots.SaveSnapshot(
        pb.SaveSnapshotRequest(
            stream="execution-s1", version=1, state_json='{"steps": 2, "big": 9007199254740993}'
        )
    )
    assert not replaced.created
    client.snapshots.SaveSnapshot(
        pb.SaveSnapshotRequest(stream="execution-s1", version=2, state_json="[1]", type="v2")
    )

    latest = client.snapshots.GetLatestSnapshot(pb.GetLatestSnapshotRequest(stream="execution-s1"))
    assert (latest.version, latest.type, json.loads(latest.state_json)) == (2, "v2", [1])
    untyped = client.snapshots.GetLatestSnapshot(pb.GetLatestSnapshotRequest(stream="execution-s1", type=""))
    assert json.loads(untyped.state_json) == {"steps": 2, "big": 9007199254740993}  # no float rounding
    listed = client.snapshots.ListSnapshots(pb.ListSnapshotsRequest(stream="execution-s1"))
    assert [s.version for s in listed.snapshots] == [2, 1]

    state = client.snapshots.GetStreamState(pb.GetStreamStateRequest(stream="execution-s1"))
    assert (
        state.snapshot.version == 2 and [e.version for e in state.events] == [3] and state.last_version == 3
    )
    assert not state.HasField("next_version")
    paged = client.snapshots.GetStreamState(pb.GetStreamStateRequest(stream="execution-s1", type="", limit=1))
    assert [e.version for e in paged.events] == [2] and paged.next_version == 3
    # the same snapshot over REST
    assert api.get("/api/v1/streams/execution-s1/snapshots/latest").json()["version"] == 2

    ahead = failure(
        client.snapshots.SaveSnapshot,
        pb.SaveSnapshotRequest(stream="execution-s1", version=4, state_json="{}"),
    )
    assert ahead.code == grpc.StatusCode.FAILED_PRECONDITION and ahead.body["last_version"] == 3
    assert ahead.info.reason == "snapshot_version_ahead"
    missing = failure(
        client.snapshots.SaveSnapshot, pb.SaveSnapshotRequest(stream="nope", version=0, state_json="{}")
    )
    assert missing.code == grpc.StatusCode.NOT_FOUND

    client.events.AppendToStream(pb.AppendToStreamRequest(stream="execution-s2", events=[cloudevent("s2-0")]))
    empty = client.snapshots.GetStreamState(pb.GetStreamStateRequest(stream="execution-s2"))
    assert not empty.HasField("snapshot") and [e.event.id for e in empty.events] == ["s2-0"]
    none = failure(client.snapshots.GetLatestSnapshot, pb.GetLatestSnapshotRequest(stream="execution-s2"))
    assert none.code == grpc.StatusCode.NOT_FOUND

    admin_client.events.DeleteStream(pb.DeleteStreamRequest(stream="execution-s1"))
    for call, request in [
        (client.snapshots.GetLatestSnapshot, pb.GetLatestSnapshotRequest(stream="execution-s1")),
        (client.snapshots.ListSnapshots, pb.ListSnapshotsRequest(stream="execution-s1")),
        (client.snapshots.GetStreamState, pb.GetStreamStateRequest(stream="execution-s1")),
        (
            client.snapshots.SaveSnapshot,
            pb.SaveSnapshotRequest(stream="execution-s1", version=0, state_json="{}"),
        ),
    ]:
        assert failure(call, request).code == grpc.StatusCode.FAILED_PRECONDITION
