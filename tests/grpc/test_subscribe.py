"""Subscribe: catch-up then live, filters, start by time, events from REST, and the horizon."""

from __future__ import annotations

import threading
import time

import grpc
import httpx
import pytest
from django.db import connection, transaction

from events.cloudevents import from_structured
from events.services import append
from grpc_api.generated.flunq.events.v1 import events_pb2 as pb
from tests.grpc.helpers import Failure, Reader, cloudevent, wait_for_horizon

pytestmark = pytest.mark.django_db(transaction=True)


def _subscribe(client, **request) -> Reader:
    return Reader(client.events.Subscribe(pb.SubscribeRequest(**request), timeout=300))


def test_catch_up_then_live_with_events_from_rest(client, live_server_url):
    first = client.events.PublishBatch(
        pb.PublishBatchRequest(events=[cloudevent("old-1"), cloudevent("old-2", type="workflow.created")])
    )
    reader = _subscribe(client, after=0)
    try:
        assert [e.event.id for e in reader.events(2)] == ["old-1", "old-2"]
        caught_up = reader.next()
        assert caught_up.WhichOneof("message") == "caught_up"
        assert caught_up.caught_up.position >= first.last_position
        for index in range(3):
            response = httpx.post(
                f"{live_server_url}/api/v1/events",
                json={
                    "specversion": "1.0",
                    "id": f"rest-{index}",
                    "source": "/rest",
                    "type": "task.completed",
                    "executionid": "x9",
                    "data": {"i": index},
                },
            )
            assert response.status_code == 201, response.text
        live = reader.events(3)
        assert [e.event.id for e in live] == ["rest-0", "rest-1", "rest-2"]
        assert [e.stream for e in live] == ["execution-x9"] * 3
        positions = [e.position for e in live]
        assert positions == sorted(positions) and positions[0] > first.last_position
    finally:
        reader.close()


def test_a_start_past_the_end_of_the_log_is_its_end(client):
    """As a subscription's start: it skipped every event appended until the log got there."""
    last = client.events.Publish(pb.PublishRequest(event=cloudevent("end-0"))).last_position
    reader = _subscribe(client, after=last + 1000)
    try:
        caught_up = reader.next()
        assert caught_up.WhichOneof("message") == "caught_up" and caught_up.caught_up.position <= last
        client.events.Publish(pb.PublishRequest(event=cloudevent("end-1")))
        assert [e.event.id for e in reader.events(1)] == ["end-1"]
    finally:
        reader.close()


def test_filters_start_now_and_from_time(client):
    # one call each: the events of one batch share their recordedtime
    appended = [
        client.events.Publish(pb.PublishRequest(event=cloudevent(event_id, type=event_type)))
        for event_id, event_type in [
            ("a-1", "task.started"),
            ("a-2", "workflow.created"),
            ("a-3", "task.completed"),
        ]
    ]
    wait_for_horizon(client, appended[-1].last_position)
    filtered = _subscribe(client, after=0, filter=pb.EventFilter(types=["task.*"]))
    from_time = _subscribe(client, from_time=appended[1].events[0].recorded_time)
    now = _subscribe(client)
    try:
        assert [e.event.id for e in filtered.events(2)] == ["a-1", "a-3"]
        assert filtered.next().WhichOneof("message") == "caught_up"
        assert [e.event.id for e in from_time.events(2)] == ["a-2", "a-3"]
        assert now.next().WhichOneof("message") == "caught_up"  # nothing before "now"

        client.events.Publish(pb.PublishRequest(event=cloudevent("b-1", type="workflow.completed")))
        client.events.Publish(pb.PublishRequest(event=cloudevent("b-2", type="task.failed")))
        assert [e.event.id for e in now.events(2)] == ["b-1", "b-2"]
        assert [e.event.id for e in filtered.events(1)] == ["b-2"]
        assert [e.event.id for e in from_time.events(2)] == ["b-1", "b-2"]
    finally:
        for reader in (filtered, from_time, now):
            reader.close()


def test_an_open_append_holds_back_subscribe_and_read_all_then_both_arrive_in_order(client):
    base = client.events.Publish(pb.PublishRequest(event=cloudevent("base"))).last_position
    wait_for_horizon(client, base)
    reader = _subscribe(client, after=base)
    opened, release = threading.Event(), threading.Event()
    held: dict = {}

    def hold_open() -> None:
        try:
            with transaction.atomic():
                event = from_structured(
                    {
                        "specversion": "1.0",
                        "id": "early",
                        "source": "/test",
                        "type": "task.started",
                        "executionid": "held",
                    }
                )
                held["position"] = append([event]).last_position
                opened.set()
                release.wait(120)
        finally:
            connection.close()

    thread = threading.Thread(target=hold_open)
    thread.start()
    try:
        assert reader.next().WhichOneof("message") == "caught_up"
        assert opened.wait(60)
        # another stream: the open transaction holds its own stream's append lock
        late = client.events.Publish(
            pb.PublishRequest(event=cloudevent("late", executionid="free"))
        ).last_position
        assert held["position"] < late  # the open transaction holds the lower position

        page = client.events.ReadAll(pb.ReadAllRequest(after=base))
        assert list(page.events) == [] and page.horizon < held["position"]
        pending = []
        while not reader.messages.empty():
            pending.append(reader.messages.get_nowait())
        assert not [m for m in pending if isinstance(m, grpc.RpcError) or m.WhichOneof("message") == "event"]

        release.set()
        thread.join(60)
        assert [(e.event.id, e.position) for e in reader.events(2)] == [
            ("early", held["position"]),
            ("late", late),
        ]
        wait_for_horizon(client, late)
        assert [e.event.id for e in client.events.ReadAll(pb.ReadAllRequest(after=base)).events] == [
            "early",
            "late",
        ]
    finally:
        release.set()
        thread.join(60)
        reader.close()


def test_bad_subscribe_requests_and_auth(client, channel):
    reader = _subscribe(client, after=-1)
    with pytest.raises(grpc.RpcError) as error:
        reader.next()
    assert Failure(error.value).code == grpc.StatusCode.INVALID_ARGUMENT
    reader = _subscribe(client, filter=pb.EventFilter(types=[""]))
    with pytest.raises(grpc.RpcError) as error:
        reader.next()
    assert Failure(error.value).code == grpc.StatusCode.INVALID_ARGUMENT
    from grpc_api.generated.flunq.events.v1 import events_pb2_grpc

    anonymous = Reader(events_pb2_grpc.EventStoreStub(channel).Subscribe(pb.SubscribeRequest(), timeout=60))
    with pytest.raises(grpc.RpcError) as error:
        anonymous.next()
    assert Failure(error.value).code == grpc.StatusCode.UNAUTHENTICATED


def test_a_client_that_stops_reading_is_told_where_to_resume(
    grpc_server_factory, make_token, transactional_db
):
    # Enough data to fill the HTTP/2 windows and buffers between server and client (~4 MB here).
    first = None
    for batch in range(12):
        result = append(
            [
                from_structured(
                    {
                        "specversion": "1.0",
                        "id": f"big-{batch}-{i}",
                        "source": "/test",
                        "type": "big.one",
                        "data": {"pad": "x" * 30_000},
                    }
                )
                for i in range(30)
            ]
        )
        first = first or result.events[0].position
    server = grpc_server_factory(GRPC_SUBSCRIBE_SEND_TIMEOUT_SECONDS="0.5")
    from tests.grpc.conftest import Client

    with grpc.insecure_channel(server.target) as channel:
        client = Client(channel, make_token(["events:read"]))
        call = client.events.Subscribe(pb.SubscribeRequest(after=0), timeout=120)
        # What is tested is a client that takes nothing for longer than the send timeout; no
        # condition can stand in for the passing of that time.
        time.sleep(4)
        received = []
        with pytest.raises(grpc.RpcError) as error:
            for message in call:
                received.append(message.event.position)
    failure = Failure(error.value)
    assert failure.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert failure.body["error"] == "subscriber_too_slow"
    resume_after = failure.body["resume_after"]
    # nothing is lost: every event up to resume_after reached the client, in order
    assert 0 < len(received) < 360 and received[0] == first
    assert received == list(range(first, first + len(received)))
    assert received[-1] - 1 <= resume_after <= received[-1]
