"""The Subscriptions service over gRPC: the consumer groups of pull subscriptions, as over REST."""

from __future__ import annotations

import time
import uuid

import grpc
import pytest

from grpc_api.generated.flunq.events.v1 import events_pb2 as pb
from tests.grpc.conftest import Client
from tests.grpc.helpers import cloudevent, failure, wait_for_horizon

pytestmark = pytest.mark.django_db(transaction=True)


def pull_subscription(api) -> str:
    response = api.post(
        "/api/v1/subscriptions",
        {"name": "grpc-pull", "kind": "pull", "start": "beginning", "filter": {"category": "order"}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def fetch_until(client: Client, request: pb.FetchRequest, deadline: float = 60.0) -> pb.FetchResponse:
    """Fetch until a message comes (a nacked message is due again once its delay has passed)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        reply = client.subscriptions.Fetch(request)
        if reply.messages:
            return reply
    raise AssertionError("no message fetched in time")


def test_fetch_ack_nack(client, api):
    appended = client.events.AppendToStream(
        pb.AppendToStreamRequest(stream="order-g1", events=[cloudevent(f"g1-{i}") for i in range(2)])
    )
    wait_for_horizon(client, appended.last_position)
    sub = pull_subscription(api)

    fetched = client.subscriptions.Fetch(
        pb.FetchRequest(subscription_id=sub, consumer="worker-1", max_events=10, lease_seconds=60)
    )
    assert [m.event.event.id for m in fetched.messages] == ["g1-0", "g1-1"]
    assert [m.event.version for m in fetched.messages] == [0, 1]
    assert all(m.event.stream == "order-g1" and m.attempt == 1 for m in fetched.messages)
    assert not fetched.messages[0].HasField("replay_job")
    assert (fetched.state, fetched.lease_seconds) == ("active", 60)
    first, second = (m.ack_id for m in fetched.messages)

    # the stream is leased to worker-1: another consumer gets nothing
    other = client.subscriptions.Fetch(pb.FetchRequest(subscription_id=sub, consumer="worker-2"))
    assert list(other.messages) == []

    acked = client.subscriptions.Ack(pb.AckRequest(subscription_id=sub, consumer="worker-1", ack_ids=[first]))
    assert (acked.acked, list(acked.stale)) == (1, [])
    again = client.subscriptions.Ack(pb.AckRequest(subscription_id=sub, consumer="worker-1", ack_ids=[first]))
    assert (again.acked, list(again.stale)) == (0, [first])

    nacked = client.subscriptions.Nack(
        pb.NackRequest(
            subscription_id=sub,
            consumer="worker-1",
            ack_ids=[second],
            reason="try again",
            action=pb.NACK_ACTION_RETRY,
            delay_seconds=0,
        )
    )
    assert (nacked.nacked, list(nacked.stale)) == (1, [])

    refetched = fetch_until(client, pb.FetchRequest(subscription_id=sub, consumer="worker-2"))
    assert [(m.event.event.id, m.attempt) for m in refetched.messages] == [("g1-1", 2)]
    done = client.subscriptions.Ack(
        pb.AckRequest(subscription_id=sub, consumer="worker-2", ack_ids=[refetched.messages[0].ack_id])
    )
    assert done.acked == 1
    # the same as REST sees it: nothing left
    rest = api.post(f"/api/v1/subscriptions/{sub}/fetch", {"consumer": "worker-3"}, format="json")
    assert rest.status_code == 200 and rest.json()["messages"] == []

    # a nack that parks the message moves it to the dead letter queue
    client.events.AppendToStream(pb.AppendToStreamRequest(stream="order-g2", events=[cloudevent("g2-0")]))
    parked = fetch_until(client, pb.FetchRequest(subscription_id=sub, consumer="worker-1"))
    reply = client.subscriptions.Nack(
        pb.NackRequest(
            subscription_id=sub,
            consumer="worker-1",
            ack_ids=[parked.messages[0].ack_id],
            reason="poison",
            action=pb.NACK_ACTION_PARK,
        )
    )
    assert reply.nacked == 1
    dead = api.get(f"/api/v1/subscriptions/{sub}/dead-letters").json()
    assert [(d["reason"], d["last_error"]) for d in dead["dead_letters"]] == [("parked", "poison")]


def test_errors(client, api, channel, make_token, settings):
    sub = pull_subscription(api)
    for call, request in [
        (client.subscriptions.Fetch, pb.FetchRequest(subscription_id=str(uuid.uuid4()), consumer="c")),
        (client.subscriptions.Fetch, pb.FetchRequest(subscription_id="nope", consumer="c")),
        (
            client.subscriptions.Ack,
            pb.AckRequest(subscription_id=str(uuid.uuid4()), consumer="c", ack_ids=["1-1"]),
        ),
        (client.subscriptions.Nack, pb.NackRequest(subscription_id="", consumer="c", ack_ids=["1-1"])),
    ]:
        assert failure(call, request).code == grpc.StatusCode.NOT_FOUND, request

    for call, request, field in [
        (
            client.subscriptions.Ack,
            pb.AckRequest(subscription_id=sub, consumer="c", ack_ids=["x"]),
            "ack_ids/0",
        ),
        (client.subscriptions.Ack, pb.AckRequest(subscription_id=sub, consumer="c"), "ack_ids"),
        (
            client.subscriptions.Nack,
            pb.NackRequest(subscription_id=sub, consumer="c", ack_ids=["1"]),
            "ack_ids/0",
        ),
        (
            client.subscriptions.Nack,
            pb.NackRequest(subscription_id=sub, consumer="c", ack_ids=["1-1"], action=7),
            "action",
        ),
        (
            client.subscriptions.Nack,
            pb.NackRequest(subscription_id=sub, consumer="c", ack_ids=["1-1"], delay_seconds=-1),
            "delay_seconds",
        ),
        (client.subscriptions.Fetch, pb.FetchRequest(subscription_id=sub), "consumer"),
        (client.subscriptions.Fetch, pb.FetchRequest(subscription_id=sub, consumer="bad name!"), "consumer"),
        (
            client.subscriptions.Fetch,
            pb.FetchRequest(subscription_id=sub, consumer="c", max_events=5000),
            "max_events",
        ),
        (
            client.subscriptions.Fetch,
            pb.FetchRequest(subscription_id=sub, consumer="c", max_events=-1),
            "max_events",
        ),
        (
            client.subscriptions.Fetch,
            pb.FetchRequest(subscription_id=sub, consumer="c", lease_seconds=-1),
            "lease_seconds",
        ),
    ]:
        error = failure(call, request)
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT, request
        assert error.body["field"] == field

    writer = Client(channel, make_token(["events:write"]))
    for call, request in [
        (writer.subscriptions.Fetch, pb.FetchRequest(subscription_id=sub, consumer="c")),
        (writer.subscriptions.Ack, pb.AckRequest(subscription_id=sub, consumer="c", ack_ids=["1-1"])),
        (writer.subscriptions.Nack, pb.NackRequest(subscription_id=sub, consumer="c", ack_ids=["1-1"])),
    ]:
        assert failure(call, request).code == grpc.StatusCode.PERMISSION_DENIED

    # fetch, ack and nack are for pull subscriptions only (REST says 409)
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    hook = api.post(
        "/api/v1/subscriptions",
        {"name": "grpc-hook", "kind": "webhook", "url": "http://127.0.0.1:9/x"},
        format="json",
    )
    assert hook.status_code == 201, hook.json()
    wrong_kind = failure(
        client.subscriptions.Fetch, pb.FetchRequest(subscription_id=hook.json()["id"], consumer="c")
    )
    assert wrong_kind.code == grpc.StatusCode.ABORTED and wrong_kind.info.reason == "conflict"

    # another tenant does not see the subscription
    acme = Client(channel, make_token(["events:read"], tenant="acme"))
    missing = failure(acme.subscriptions.Fetch, pb.FetchRequest(subscription_id=sub, consumer="c"))
    assert missing.code == grpc.StatusCode.NOT_FOUND
