"""EventStore RPCs against a real server, called with the generated client."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import grpc
import pytest

from grpc_api.generated.flunq.events.v1 import events_pb2 as pb
from grpc_api.generated.flunq.events.v1 import events_pb2_grpc
from tests.grpc.helpers import attribute, cloudevent, failure, wait_for_horizon

pytestmark = pytest.mark.django_db(transaction=True)


def test_publish_get_and_read_all_round_trip(client, api):
    event = cloudevent(
        "e-1",
        type="workflow.created",
        data={"name": "order", "n": 2**40},
        workflowid="wf-1",
        time=datetime(2026, 1, 31, 12, 0, tzinfo=UTC),
        attempt=3,
        urgent=True,
        blob=b"\x00\x01",
    )
    appended = client.events.Publish(pb.PublishRequest(event=event))
    assert not appended.duplicate and len(appended.events) == 1
    item = appended.events[0]
    assert (item.id, item.source, item.stream, item.version) == ("e-1", "/test", "workflow-wf-1", 0)
    assert appended.last_position == item.position > 0

    got = client.events.GetEvent(pb.GetEventRequest(id="e-1"))
    assert (got.stream, got.version, got.position) == ("workflow-wf-1", 0, item.position)
    assert json.loads(got.event.text_data) == {"name": "order", "n": 2**40}
    assert attribute(got.event, "workflowid") == "wf-1"
    assert attribute(got.event, "attempt") == 3 and attribute(got.event, "urgent") is True
    assert attribute(got.event, "blob") == "AAE="  # binary extension values are kept as base64
    assert attribute(got.event, "time").ToDatetime(tzinfo=UTC) == datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    # the server-assigned attributes travel with the CloudEvent too
    assert attribute(got.event, "stream") == "workflow-wf-1"
    assert attribute(got.event, "position") == str(item.position)
    assert attribute(got.event, "version") == "0"
    assert attribute(got.event, "recordedtime") == got.recorded_time

    # the same event over REST: one log, one shape
    rest = api.get("/api/v1/events/e-1").json()
    assert rest["data"] == {"name": "order", "n": 2**40} and rest["attempt"] == 3 and rest["urgent"] is True
    assert rest["position"] == item.position and rest["time"] == "2026-01-31T12:00:00Z"

    wait_for_horizon(client, item.position)
    page = client.events.ReadAll(pb.ReadAllRequest(after=0, min_position=item.position))
    assert [e.event.id for e in page.events] == ["e-1"]
    assert page.horizon >= item.position and page.next_after >= item.position


def test_idempotent_retry_and_reused_id(client):
    first = client.events.Publish(pb.PublishRequest(event=cloudevent("dup-1", data={"a": 1})))
    again = client.events.Publish(pb.PublishRequest(event=cloudevent("dup-1", data={"a": 1})))
    assert again.duplicate and again.events[0].position == first.events[0].position
    reused = failure(client.events.Publish, pb.PublishRequest(event=cloudevent("dup-1", data={"a": 2})))
    assert reused.code == grpc.StatusCode.ALREADY_EXISTS
    assert (
        reused.body["error"] == "duplicate_event_conflict"
        and reused.info.reason == "duplicate_event_conflict"
    )


def test_data_modes(client, api):
    octets = cloudevent("bin-1", datacontenttype="application/octet-stream")
    octets.binary_data = b"\x00\xffraw"
    text = cloudevent("txt-1", datacontenttype="text/plain")
    text.text_data = "hello"
    json_bytes = cloudevent("jb-1", datacontenttype="application/json")
    json_bytes.binary_data = b'{"k": [1, 2]}'
    client.events.PublishBatch(pb.PublishBatchRequest(events=[octets, text, json_bytes]))

    assert client.events.GetEvent(pb.GetEventRequest(id="bin-1")).event.binary_data == b"\x00\xffraw"
    assert client.events.GetEvent(pb.GetEventRequest(id="txt-1")).event.text_data == "hello"
    assert json.loads(client.events.GetEvent(pb.GetEventRequest(id="jb-1")).event.text_data) == {"k": [1, 2]}
    assert api.get("/api/v1/events/txt-1").json()["data"] == "hello"
    assert api.get("/api/v1/events/jb-1").json()["data"] == {"k": [1, 2]}
    assert api.get("/api/v1/events/bin-1").json()["data_base64"] == "AP9yYXc="


def test_append_to_stream_with_expected_versions(client):
    events = [cloudevent(f"s-{i}", data={"i": i}) for i in range(3)]
    request = pb.AppendToStreamRequest(
        stream="order-7", events=events, expected_state=pb.EXPECTED_STATE_NO_STREAM
    )
    result = client.events.AppendToStream(request)
    assert [e.version for e in result.events] == [0, 1, 2]
    positions = [e.position for e in result.events]
    assert positions == sorted(positions) and len(set(positions)) == 3

    stale = failure(
        client.events.AppendToStream,
        pb.AppendToStreamRequest(stream="order-7", events=[cloudevent("s-3")], expected_version=1),
    )
    assert stale.code == grpc.StatusCode.ABORTED
    assert stale.body["actual_version"] == 2 and stale.info.metadata["actual_version"] == "2"
    assert stale.info.reason == "wrong_expected_version" and "version 2" in stale.message

    exists = failure(
        client.events.AppendToStream,
        pb.AppendToStreamRequest(
            stream="order-7", events=[cloudevent("s-3")], expected_state=pb.EXPECTED_STATE_NO_STREAM
        ),
    )
    assert exists.code == grpc.StatusCode.ABORTED
    ok = client.events.AppendToStream(
        pb.AppendToStreamRequest(stream="order-7", events=[cloudevent("s-3")], expected_version=2)
    )
    assert ok.events[0].version == 3
    missing = failure(
        client.events.AppendToStream,
        pb.AppendToStreamRequest(
            stream="order-8", events=[cloudevent("x-1")], expected_state=pb.EXPECTED_STATE_STREAM_EXISTS
        ),
    )
    assert missing.code == grpc.StatusCode.ABORTED and missing.body["actual_version"] == -1


def test_read_stream_forward_and_backward(client):
    client.events.AppendToStream(
        pb.AppendToStreamRequest(stream="page-1", events=[cloudevent(f"p-{i}") for i in range(5)])
    )
    forward = client.events.ReadStream(pb.ReadStreamRequest(stream="page-1", from_version=2, limit=2))
    assert [e.version for e in forward.events] == [2, 3] and forward.next_version == 4
    rest = client.events.ReadStream(pb.ReadStreamRequest(stream="page-1", from_version=4, limit=2))
    assert [e.version for e in rest.events] == [4] and not rest.HasField("next_version")
    backward = client.events.ReadStream(
        pb.ReadStreamRequest(stream="page-1", direction=pb.DIRECTION_BACKWARD, limit=3)
    )
    assert [e.version for e in backward.events] == [4, 3, 2] and backward.next_version == 1
    assert [e.event.id for e in client.events.ReadStream(pb.ReadStreamRequest(stream="page-1")).events] == [
        f"p-{i}" for i in range(5)
    ]


def test_read_all_filters_and_pages(client):
    appended = client.events.PublishBatch(
        pb.PublishBatchRequest(
            events=[
                cloudevent("f-1", type="task.started", executionid="x1", tenantid="t1"),
                cloudevent("f-2", type="task.completed", executionid="x1", tenantid="t2"),
                cloudevent("f-3", type="workflow.created", workflowid="w1", tenantid="t1"),
            ]
        )
    )
    wait_for_horizon(client, appended.last_position)

    def ids(**filter_):
        return [
            e.event.id
            for e in client.events.ReadAll(pb.ReadAllRequest(filter=pb.EventFilter(**filter_))).events
        ]

    assert ids(types=["task.*"]) == ["f-1", "f-2"]
    assert ids(types=["workflow.created", "task.started"]) == ["f-1", "f-3"]
    assert ids(tenantid="t1") == ["f-1", "f-3"]
    assert ids(category="execution") == ["f-1", "f-2"]
    assert ids(stream="workflow-w1") == ["f-3"]
    assert ids(until=datetime(2000, 1, 1, tzinfo=UTC)) == []

    first = client.events.ReadAll(pb.ReadAllRequest(limit=2))
    assert [e.event.id for e in first.events] == ["f-1", "f-2"]
    second = client.events.ReadAll(pb.ReadAllRequest(after=first.next_after, limit=2))
    assert [e.event.id for e in second.events] == ["f-3"]


def test_streams_get_list_delete(client, admin_client):
    client.events.AppendToStream(
        pb.AppendToStreamRequest(stream="cart-1", events=[cloudevent("c-1"), cloudevent("c-2")])
    )
    client.events.AppendToStream(pb.AppendToStreamRequest(stream="cart-2", events=[cloudevent("c-3")]))
    info = client.events.GetStream(pb.GetStreamRequest(stream="cart-1"))
    assert (info.name, info.category, info.last_version, info.event_count, info.deleted) == (
        "cart-1",
        "cart",
        1,
        2,
        False,
    )
    assert json.loads(info.metadata_json) == {}
    listed = client.events.ListStreams(pb.ListStreamsRequest(prefix="cart-", limit=1))
    assert [s.name for s in listed.streams] == ["cart-1"] and listed.next_after == "cart-1"
    after = client.events.ListStreams(pb.ListStreamsRequest(prefix="cart-", after=listed.next_after))
    assert [s.name for s in after.streams] == ["cart-2"]

    denied = failure(client.events.DeleteStream, pb.DeleteStreamRequest(stream="cart-1"))
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    deleted = admin_client.events.DeleteStream(pb.DeleteStreamRequest(stream="cart-1"))
    assert deleted.deleted and deleted.HasField("deleted_at")
    assert client.events.GetStream(pb.GetStreamRequest(stream="cart-1")).deleted
    gone = failure(client.events.ReadStream, pb.ReadStreamRequest(stream="cart-1"))
    assert gone.code == grpc.StatusCode.FAILED_PRECONDITION and gone.body["error"] == "stream_deleted"
    refused = failure(
        client.events.AppendToStream, pb.AppendToStreamRequest(stream="cart-1", events=[cloudevent("c-9")])
    )
    assert refused.code == grpc.StatusCode.FAILED_PRECONDITION
    assert [s.name for s in client.events.ListStreams(pb.ListStreamsRequest(prefix="cart-")).streams] == [
        "cart-2"
    ]
    with_deleted = client.events.ListStreams(pb.ListStreamsRequest(prefix="cart-", include_deleted=True))
    assert [s.name for s in with_deleted.streams] == ["cart-1", "cart-2"]


def test_unknown_things_are_not_found(client, admin_client):
    for call, request in [
        (client.events.GetEvent, pb.GetEventRequest(id="nope")),
        (client.events.ReadStream, pb.ReadStreamRequest(stream="nope")),
        (client.events.GetStream, pb.GetStreamRequest(stream="nope")),
        (admin_client.events.DeleteStream, pb.DeleteStreamRequest(stream="nope")),
        (client.snapshots.GetLatestSnapshot, pb.GetLatestSnapshotRequest(stream="nope")),
        (client.snapshots.GetStreamState, pb.GetStreamStateRequest(stream="nope")),
    ]:
        result = failure(call, request)
        assert result.code == grpc.StatusCode.NOT_FOUND, (request, result.message)
        assert result.body["error"] == "not_found"


def test_a_token_bound_to_a_tenant_sees_and_writes_only_that_tenant(channel, make_token, client):
    from tests.grpc.conftest import Client
    from tests.grpc.helpers import Reader

    acme = Client(channel, make_token(["events:read", "events:write"], tenant="acme"))
    other = client.events.Publish(
        pb.PublishRequest(event=cloudevent("t-other", executionid="o1", tenantid="globex"))
    )
    wait_for_horizon(client, other.last_position)
    subscription = Reader(acme.events.Subscribe(pb.SubscribeRequest(after=0), timeout=120))
    try:
        mine = acme.events.Publish(pb.PublishRequest(event=cloudevent("t-mine", executionid="m1")))
        assert attribute(acme.events.GetEvent(pb.GetEventRequest(id="t-mine")).event, "tenantid") == "acme"
        assert [e.event.id for e in subscription.events(1)] == ["t-mine"]  # never globex's event
        wait_for_horizon(client, mine.last_position)
        assert [e.event.id for e in acme.events.ReadAll(pb.ReadAllRequest()).events] == ["t-mine"]
        assert [s.name for s in acme.events.ListStreams(pb.ListStreamsRequest()).streams] == ["execution-m1"]

        foreign = failure(acme.events.Publish, pb.PublishRequest(event=cloudevent("t-x", tenantid="globex")))
        assert (
            foreign.code == grpc.StatusCode.PERMISSION_DENIED and foreign.body["error"] == "forbidden_tenant"
        )
        asked = failure(acme.events.ReadAll, pb.ReadAllRequest(filter=pb.EventFilter(tenantid="globex")))
        assert asked.code == grpc.StatusCode.PERMISSION_DENIED
        for call, request in [
            (acme.events.GetEvent, pb.GetEventRequest(id="t-other")),
            (acme.events.GetStream, pb.GetStreamRequest(stream="execution-o1")),
            (acme.events.ReadStream, pb.ReadStreamRequest(stream="execution-o1")),
            (acme.snapshots.GetStreamState, pb.GetStreamStateRequest(stream="execution-o1")),
            (
                acme.snapshots.SaveSnapshot,
                pb.SaveSnapshotRequest(stream="execution-o1", version=0, state_json="{}"),
            ),
        ]:
            assert failure(call, request).code == grpc.StatusCode.NOT_FOUND, request
        into = failure(
            acme.events.AppendToStream,
            pb.AppendToStreamRequest(stream="execution-o1", events=[cloudevent("t-y")]),
        )
        assert into.code == grpc.StatusCode.PERMISSION_DENIED
    finally:
        subscription.close()


def test_reads_waiting_for_a_position_hold_no_database_thread(client, channel, settings):
    """ReadAll with min_position slept in a database thread: GRPC_DB_THREADS waiting reads (or reads
    whose clients gave up) held every thread, and every other call waited behind them."""
    stub = events_pb2_grpc.EventStoreStub(channel)
    request = pb.ReadAllRequest(min_position=2**62)
    waits = [stub.ReadAll.future(request, metadata=client.metadata, timeout=30) for _ in range(12)]
    try:
        time.sleep(0.5)  # every one of them is waiting on the server
        published = client.events.Publish(pb.PublishRequest(event=cloudevent("while-waiting")))
        assert published.events[0].id == "while-waiting"
        assert not any(wait.done() for wait in waits)  # answered while all of them still waited
    finally:
        for wait in waits:
            wait.cancel()
