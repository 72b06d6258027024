"""Bad input and bad tokens get the right status codes, and the server keeps serving."""

from __future__ import annotations

import secrets
import time

import grpc
import pytest

from grpc_api.generated.flunq.events.v1 import events_pb2 as pb
from grpc_api.generated.flunq.events.v1 import events_pb2_grpc
from tests.grpc.conftest import Client, GrpcProcess
from tests.grpc.helpers import cloudevent, failure

pytestmark = pytest.mark.django_db(transaction=True)

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def _with_attribute(event, name: str, value: str):
    event.attributes[name].ce_string = value
    return event


def _raw_call(channel: grpc.Channel, method: str, payload: bytes, metadata) -> grpc.RpcError:
    call = channel.unary_unary(f"/flunq.events.v1.EventStore/{method}")  # bytes in, bytes out
    with pytest.raises(grpc.RpcError) as error:
        call(payload, metadata=metadata, timeout=30)
    return error.value


def test_malformed_messages_are_invalid_argument(channel, client):
    garbage = _raw_call(channel, "Publish", b"\xff\xff\xff\xff", client.metadata)
    assert garbage.code() == INVALID and "PublishRequest" in garbage.details()
    # event.id (field 1 of field 1) holding bytes that are not UTF-8
    bad_utf8 = _raw_call(channel, "Publish", b"\x0a\x03\x0a\x01\xff", client.metadata)
    assert bad_utf8.code() == INVALID
    truncated = _raw_call(channel, "AppendToStream", b"\x0a\x10abc", client.metadata)
    assert truncated.code() == INVALID


def test_invalid_fields_name_what_is_wrong(client):
    cases = [
        (client.events.Publish, pb.PublishRequest(), "event"),
        (client.events.Publish, pb.PublishRequest(event=cloudevent("")), "/id"),
        (client.events.Publish, pb.PublishRequest(event=cloudevent("x", type="")), "/type"),
        (client.events.Publish, pb.PublishRequest(event=cloudevent("x", source="")), "/source"),
        (client.events.Publish, pb.PublishRequest(event=cloudevent("x", **{"Bad-Name": "v"})), "/Bad-Name"),
        (client.events.Publish, pb.PublishRequest(event=cloudevent("x", position="7")), "/position"),
        (client.events.Publish, pb.PublishRequest(event=cloudevent("x", time="yesterday")), "/time"),
        (client.events.Publish, pb.PublishRequest(event=cloudevent("x", subject=True)), "/subject"),
        (
            client.events.Publish,
            pb.PublishRequest(event=_with_attribute(cloudevent("x"), "id", "again")),
            "/id",
        ),
        (client.events.PublishBatch, pb.PublishBatchRequest(), "events"),
        (
            client.events.PublishBatch,
            pb.PublishBatchRequest(events=[cloudevent("ok"), cloudevent("")]),
            "/1/id",
        ),
        (client.events.AppendToStream, pb.AppendToStreamRequest(events=[cloudevent("x")]), "stream"),
        (
            client.events.AppendToStream,
            pb.AppendToStreamRequest(stream="bad stream", events=[cloudevent("x")]),
            "/stream",
        ),
        (
            client.events.AppendToStream,
            pb.AppendToStreamRequest(stream="s-1", events=[cloudevent("x")], expected_version=-1),
            "expected_version",
        ),
        (
            client.events.AppendToStream,
            pb.AppendToStreamRequest(stream="s-1", events=[cloudevent("x")], expected_state=9),
            "expected_state",
        ),
        (client.events.ReadStream, pb.ReadStreamRequest(stream="s-1", limit=100_000), "limit"),
        (client.events.ReadStream, pb.ReadStreamRequest(stream="s-1", limit=-1), "limit"),
        (client.events.ReadStream, pb.ReadStreamRequest(stream="s-1", direction=7), "direction"),
        (client.events.ReadStream, pb.ReadStreamRequest(stream="s-1", from_version=-3), "from_version"),
        (client.events.ReadStream, pb.ReadStreamRequest(stream="s\x00"), "stream"),
        (client.events.ReadAll, pb.ReadAllRequest(after=-1), "after"),
        (client.events.ReadAll, pb.ReadAllRequest(filter=pb.EventFilter(source="a\x00b")), "source"),
        (client.events.ReadAll, pb.ReadAllRequest(filter=pb.EventFilter(types=["a*b"])), "filter.types"),
        (
            client.events.ReadAll,
            pb.ReadAllRequest(filter=pb.EventFilter(types=[f"t{i}" for i in range(101)])),
            "filter.types",
        ),
        (client.events.GetEvent, pb.GetEventRequest(), "id"),
        (client.snapshots.SaveSnapshot, pb.SaveSnapshotRequest(stream="s-1", version=0), "state_json"),
        (
            client.snapshots.SaveSnapshot,
            pb.SaveSnapshotRequest(stream="s-1", version=0, state_json="{"),
            "state_json",
        ),
        (
            client.snapshots.SaveSnapshot,
            pb.SaveSnapshotRequest(stream="s-1", version=0, state_json="NaN"),
            "state_json",
        ),
        (
            client.snapshots.SaveSnapshot,
            pb.SaveSnapshotRequest(stream="s-1", version=-1, state_json="{}"),
            "version",
        ),
    ]
    for call, request, where in cases:
        result = failure(call, request)
        assert result.code == INVALID, (request, result.code, result.message)
        named = (result.body.get("field"), result.body.get("attribute"), result.body.get("parameter"))
        assert where in named or where in result.message, (request, result.body)


def test_data_that_cannot_be_stored(client):
    bad_json = cloudevent("d-1")
    bad_json.text_data = '{"a": NaN}'
    as_proto = cloudevent("d-2")
    as_proto.proto_data.type_url = "type.googleapis.com/google.protobuf.Empty"
    not_utf8 = cloudevent("d-3", datacontenttype="text/plain")
    not_utf8.binary_data = b"\xff\xfe"
    too_deep = cloudevent("d-4")
    too_deep.text_data = "[" * 200 + "]" * 200
    huge_int = cloudevent("d-5")
    huge_int.text_data = '{"n": 123456789012345678901234567890}'
    for event in (bad_json, as_proto, not_utf8, too_deep, huge_int):
        result = failure(client.events.Publish, pb.PublishRequest(event=event))
        assert result.code == INVALID and result.body["error"] == "invalid_event", result.body
        assert result.body["attribute"] == "/data"
    data_attribute = failure(
        client.events.Publish, pb.PublishRequest(event=_with_attribute(cloudevent("d-6"), "data", "x"))
    )
    assert data_attribute.code == INVALID and data_attribute.body["attribute"] == "/data"


def test_oversize_messages_are_refused_and_the_server_keeps_serving(client, settings):
    big = cloudevent("huge")
    big.text_data = '"' + "x" * (settings.GRPC_MAX_MESSAGE_BYTES + 10) + '"'
    result = failure(client.events.Publish, pb.PublishRequest(event=big))
    assert result.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    ok = client.events.Publish(pb.PublishRequest(event=cloudevent("after-huge")))
    assert ok.events[0].id == "after-huge"


def test_batch_limit(client, settings):
    events = [cloudevent(f"b-{i}") for i in range(settings.MAX_BATCH_EVENTS + 1)]
    result = failure(client.events.PublishBatch, pb.PublishBatchRequest(events=events))
    assert result.code == INVALID and result.body["limit"] == settings.MAX_BATCH_EVENTS


def test_tokens_and_scopes(channel, make_token):
    request = pb.PublishRequest(event=cloudevent("auth-1"))
    stub = events_pb2_grpc.EventStoreStub(channel)
    for metadata, message in [
        ([], "token is required"),
        ([("authorization", "Bearer flq_not-a-token")], "unknown or revoked"),
        ([("authorization", "Basic dXNlcjpwYXNz")], "Bearer"),
        ([("authorization", "Bearer ")], "Bearer"),
    ]:
        result = failure(stub.Publish, request, metadata=metadata, timeout=30)
        assert result.code == grpc.StatusCode.UNAUTHENTICATED and message in result.message, result.message
        assert result.body["error"] == "unauthenticated"
    reader = Client(channel, make_token(["events:read"]))
    denied = failure(reader.events.Publish, request)
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED and denied.body["scope"] == "events:write"
    writer = Client(channel, make_token(["events:write"]))
    assert (
        failure(writer.events.GetStream, pb.GetStreamRequest(stream="x")).code
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert writer.events.Publish(request).events[0].id == "auth-1"


def test_auth_off_allows_everything_and_sigterm_stops_cleanly(transactional_db):
    server = GrpcProcess({"AUTH_REQUIRED": "false"})
    try:
        with grpc.insecure_channel(server.target) as channel:
            anonymous = Client(channel, None)
            assert (
                anonymous.events.Publish(pb.PublishRequest(event=cloudevent("open-1"))).events[0].id
                == "open-1"
            )
            assert anonymous.events.DeleteStream(pb.DeleteStreamRequest(stream="task")).deleted
    finally:
        assert server.stop() == 0, server.output()


def test_nul_and_out_of_range_timestamps_are_invalid_not_unknown(client):
    # PostgreSQL cannot store NUL and protobuf Timestamps reach beyond year 9999: both used to
    # escape as UNKNOWN with the database's or protobuf's own text.
    nul_text = cloudevent("n-6", datacontenttype="text/plain")
    nul_text.text_data = "a\x00b"
    nul_binary = cloudevent("n-7", datacontenttype="text/plain")
    nul_binary.binary_data = b"a\x00b"
    late = cloudevent("n-8")
    late.attributes["time"].ce_timestamp.seconds = 253402300800  # 10000-01-01
    early = cloudevent("n-9")
    early.attributes["other"].ce_timestamp.seconds = -62135596801  # before 0001-01-01
    cases = [
        (cloudevent("a\x00b"), "/id"),
        (cloudevent("n-1", source="/a\x00b"), "/source"),
        (cloudevent("n-2", type="task.\x00"), "/type"),
        (cloudevent("n-3", subject="a\x00b"), "/subject"),
        (cloudevent("n-4", tenantid="t\x00"), "/tenantid"),
        (_with_uri(cloudevent("n-5"), "origin", "http://x/\x00"), "/origin"),
        (nul_text, "/data"),
        (nul_binary, "/data"),
        (late, "/time"),
        (early, "/other"),
    ]
    for event, where in cases:
        result = failure(client.events.Publish, pb.PublishRequest(event=event))
        assert result.code == INVALID, (event, result.code, result.message)
        assert result.body["error"] == "invalid_event" and result.body["attribute"] == where, result.body
    batch = failure(
        client.events.PublishBatch, pb.PublishBatchRequest(events=[cloudevent("n-ok"), cloudevent("n\x00")])
    )
    assert batch.code == INVALID and batch.body["attribute"] == "/1/id"
    # nothing of the refused batch was written
    assert failure(client.events.GetEvent, pb.GetEventRequest(id="n-ok")).code == grpc.StatusCode.NOT_FOUND


def _with_uri(event, name: str, value: str):
    event.attributes[name].ce_uri = value
    return event


def test_values_too_long_to_index_are_invalid_not_unavailable(client):
    """Attributes are checked in characters; PostgreSQL's indexes take ~2.7 kB an entry."""
    # Random text: PostgreSQL compresses an index entry that repeats itself.
    long_pair = cloudevent(secrets.token_urlsafe(1536), source=secrets.token_urlsafe(1536))
    wide = cloudevent(
        "wide-1", correlationid="".join(chr(0x4E00 + secrets.randbelow(20_000)) for _ in range(2048))
    )
    for request in (
        pb.PublishRequest(event=long_pair),
        pb.PublishRequest(event=wide),
        pb.PublishBatchRequest(events=[cloudevent("fine-1"), long_pair]),
    ):
        call = (
            client.events.PublishBatch
            if isinstance(request, pb.PublishBatchRequest)
            else client.events.Publish
        )
        result = failure(call, request)
        assert result.code == INVALID and "too long to be indexed" in result.message, result.message
    assert client.events.ReadAll(pb.ReadAllRequest(after=0, limit=10)).events == []  # nothing written


def test_errors_that_echo_the_input_fit_in_the_trailers(client, settings):
    """grpcio clients refuse trailers over 16 KiB (RESOURCE_EXHAUSTED), hiding the status."""
    from schemas import services as schemas

    schemas.register("bulk.checked", {"type": "object", "properties": {"name": {"type": "string"}}})
    registered = time.monotonic()  # the server's process trusts its list of subjects this long
    missing = failure(client.events.GetEvent, pb.GetEventRequest(id="\U0001f600" * 700))
    assert missing.code == grpc.StatusCode.NOT_FOUND, missing.message
    bad_time = cloudevent("t-1")
    bad_time.attributes["time"].ce_string = "\U0001f600" * 2040
    assert failure(client.events.Publish, pb.PublishRequest(event=bad_time)).code == INVALID
    # Schema errors of every event of a batch, each naming its event: one short message each.
    time.sleep(max(0.0, registered + settings.SCHEMA_CACHE_SECONDS + 0.2 - time.monotonic()))
    many = [cloudevent(f"m-{i}", type="bulk.checked") for i in range(200)]
    for event in many:
        event.text_data = '{"name": 5}'
    result = failure(client.events.PublishBatch, pb.PublishBatchRequest(events=many))
    assert result.code == INVALID and result.body["error"] == "schema_validation_failed", result.body
