"""Pull consumer groups: fetch leases streams, ack/nack settle, expired leases redeliver."""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict

import pytest
from django.db import connection

from events.cloudevents import from_structured
from events.services import append
from subscriptions import pull
from subscriptions.models import DeadLetter, Subscription, SubscriptionStream
from tests.subscriptions.conftest import append_to, caught_up, event, run_until

pytestmark = pytest.mark.django_db(transaction=True)


def create_pull(api, **extra) -> str:
    caught_up()
    body = {
        "name": "group",
        "kind": "pull",
        "start": "beginning",
        "retry": {"max_attempts": 3, "backoff": [0]},
        **extra,
    }
    response = api.post("/api/v1/subscriptions", body, format="json")
    assert response.status_code == 201, response.json()
    assert "secret" not in response.json()
    return response.json()["id"]


def fetch(api, sub, consumer, max_events=10, **extra):
    response = api.post(
        f"/api/v1/subscriptions/{sub}/fetch",
        {"consumer": consumer, "max_events": max_events, **extra},
        format="json",
    )
    assert response.status_code == 200, response.json()
    return response.json()["messages"]


def settle(api, sub, verb, consumer, messages, **extra):
    response = api.post(
        f"/api/v1/subscriptions/{sub}/{verb}",
        {"consumer": consumer, "ack_ids": [m["ack_id"] for m in messages], **extra},
        format="json",
    )
    assert response.status_code == 200, response.json()
    return response.json()


def test_one_stream_goes_to_one_consumer_at_a_time_in_order(api):
    a = append_to("pull-a", 3)
    b = append_to("pull-b", 2)
    sub = create_pull(api)
    first = fetch(api, sub, "c1", max_events=10)
    assert sorted(m["event"]["position"] for m in first) == sorted(a + b)
    assert fetch(api, sub, "c2") == []  # both streams are leased to c1
    by_stream = defaultdict(list)
    for m in first:
        by_stream[m["event"]["stream"]].append(m["event"]["position"])
    assert by_stream == {"pull-a": a, "pull-b": b}
    # c1 finishes stream b only: b is released, a stays with c1.
    assert settle(api, sub, "ack", "c1", [m for m in first if m["event"]["stream"] == "pull-b"]) == {
        "acked": 2,
        "stale": [],
    }
    more_b = append_to("pull-b", 1)
    caught_up()
    second = fetch(api, sub, "c2")
    assert [m["event"]["position"] for m in second] == more_b
    # An ack from someone else's attempt is stale and changes nothing.
    assert settle(api, sub, "ack", "c2", first[:1])["stale"] == [first[0]["ack_id"]]


def test_nack_retry_redelivers_the_rest_of_the_stream_in_order(api):
    positions = append_to("nack-a", 3)
    sub = create_pull(api)
    got = fetch(api, sub, "c1")
    assert settle(api, sub, "nack", "c1", got[:1], reason="db down", action="retry") == {
        "nacked": 1,
        "stale": [],
    }
    again = fetch(api, sub, "c2")
    assert [m["event"]["position"] for m in again] == positions
    assert again[0]["attempt"] == 2
    # c1's leftover ack ids are stale now: c2 holds the stream.
    assert settle(api, sub, "ack", "c1", got[1:])["stale"] == [m["ack_id"] for m in got[1:]]


def test_nack_park_and_max_attempts_go_to_the_dead_letter_queue(api):
    positions = append_to("park-a", 2)
    sub = create_pull(api, retry={"max_attempts": 2, "backoff": [0]})
    got = fetch(api, sub, "c1", max_events=1)
    settle(api, sub, "nack", "c1", got, reason="poison", action="park")
    dead = api.get(f"/api/v1/subscriptions/{sub}/dead-letters").json()["dead_letters"]
    assert [(d["position"], d["reason"], d["last_error"]) for d in dead] == [
        (positions[0], "parked", "poison")
    ]
    for _ in range(2):
        got = fetch(api, sub, "c1", max_events=1)
        assert [m["event"]["position"] for m in got] == [positions[1]]
        settle(api, sub, "nack", "c1", got, reason="still failing", action="retry")
    assert fetch(api, sub, "c1") == []
    assert DeadLetter.objects.filter(position=positions[1], reason="max_attempts").exists()


def test_a_nack_leaves_the_earlier_messages_of_its_stream_to_ack(api):
    append_to("nack-tail", 3)
    sub = create_pull(api)
    got = fetch(api, sub, "c1")
    assert settle(api, sub, "nack", "c1", got[2:], reason="later", delay_seconds=600) == {
        "nacked": 1,
        "stale": [],
    }
    # Nobody fetched the first two again: they are still the consumer's to ack.
    assert settle(api, sub, "ack", "c1", got[:2]) == {"acked": 2, "stale": []}
    # The nacked message waits out its delay, also now that the stream is released.
    stream = SubscriptionStream.objects.get(subscription_id=sub, stream="nack-tail")
    assert stream.lease_owner is None and stream.pending == 1
    assert (stream.next_attempt_at - _now()).total_seconds() > 500
    assert fetch(api, sub, "c2") == []


def test_a_nacked_stream_stays_with_the_consumer_holding_its_earlier_messages(api):
    positions = append_to("nack-held", 4)
    sub = create_pull(api)
    got = fetch(api, sub, "c1")
    settle(api, sub, "nack", "c1", got[2:3], reason="later", delay_seconds=0)
    assert fetch(api, sub, "c2") == []  # c1 still holds the first two of the stream
    assert settle(api, sub, "ack", "c1", got[:2]) == {"acked": 2, "stale": []}
    again = fetch(api, sub, "c2")
    assert [(m["event"]["position"], m["attempt"]) for m in again] == [(positions[2], 2), (positions[3], 2)]


def test_a_fetch_looks_past_a_head_it_moves_to_the_dead_letter_queue(api):
    positions = append_to("exhausted", 2)
    sub = create_pull(api, retry={"max_attempts": 3, "backoff": [0]})
    for attempt in (1, 2, 3):
        got = fetch(api, sub, "c1", max_events=1, lease_seconds=0.1)
        assert [(m["event"]["position"], m["attempt"]) for m in got] == [(positions[0], attempt)]
        time.sleep(0.15)  # the lease runs out unacked
    # The head goes to the dead letter queue, and the message behind it is due: an empty answer
    # would read as "caught up".
    got = fetch(api, sub, "c1", max_events=1)
    assert [(m["event"]["position"], m["attempt"]) for m in got] == [(positions[1], 1)]
    assert DeadLetter.objects.filter(position=positions[0], reason="max_attempts").exists()


def test_a_dead_letter_whose_event_is_pending_again_stays(api, admin_api):
    positions = append_to("rewound", 1)
    sub = create_pull(api)
    settle(api, sub, "nack", "c1", fetch(api, sub, "c1"), reason="poison", action="park")
    dead = api.get(f"/api/v1/subscriptions/{sub}/dead-letters").json()["dead_letters"]
    # A rewind queues the event again; the dead letter's copy would be a second live one.
    admin_api.patch(f"/api/v1/subscriptions/{sub}", {"rewind": positions[0]}, format="json")
    assert [m["event"]["position"] for m in fetch(api, sub, "c1")] == positions
    one = admin_api.post(f"/api/v1/subscriptions/{sub}/dead-letters/{dead[0]['id']}/redrive")
    assert one.json() == {"redriven": 0}
    many = admin_api.post(f"/api/v1/subscriptions/{sub}/dead-letters/redrive", {}, format="json")
    assert many.json() == {"redriven": 0, "remaining": 1}
    assert DeadLetter.objects.filter(id=dead[0]["id"]).exists()


def test_an_expired_lease_is_fetched_again(api):
    positions = append_to("lease-a", 2)
    sub = create_pull(api)
    lost = fetch(api, sub, "doomed", lease_seconds=0.2)
    assert len(lost) == 2
    run_until(
        lambda: False,
        lambda: bool(SubscriptionStream.objects.filter(stream="lease-a", lease_until__lt=_now()).exists()),
    )
    again = fetch(api, sub, "c2")
    assert [m["event"]["position"] for m in again] == positions
    assert settle(api, sub, "ack", "c2", again) == {"acked": 2, "stale": []}


def _now():
    from django.utils import timezone

    return timezone.now()


@pytest.mark.slow
def test_consumer_group_of_three_shares_5000_events_over_50_streams(api):
    rng = random.Random(7)
    for _ in range(5):
        # Derived streams: execution-g0 ... execution-g49, interleaved at random.
        append([from_structured(event(executionid=f"g{rng.randrange(50)}")) for _ in range(1000)])
    subscription = Subscription.objects.get(id=create_pull(api))

    # A consumer that takes a lease and dies: its events must come back to the others.
    doomed = pull.fetch(subscription, consumer="doomed", max_events=100, lease_seconds=1)
    assert len(doomed) == 100

    lock = threading.Lock()
    processed: list[tuple[str, int]] = []  # (stream, version) in processing order
    acked: list[int] = []
    errors: list[str] = []

    def consume(name: str) -> None:
        # Each thread has its own database connection, as each consumer process would.
        try:
            idle_since = None
            while True:
                with lock:
                    if len(acked) >= 5000 or errors:
                        return
                messages = pull.fetch(subscription, consumer=name, max_events=100, lease_seconds=30)
                if not messages:
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since > 30:
                        errors.append(f"{name} idle for 30 s")
                    time.sleep(0.05)  # nothing leasable now (a lease is running out)
                    continue
                idle_since = None
                with lock:
                    processed.extend((m.event["stream"], m.event["version"]) for m in messages)
                result = pull.ack(
                    subscription, consumer=name, ack_ids=pull.parse_ack_ids([m.ack_id for m in messages])
                )
                if result["stale"]:
                    errors.append(f"{name}: stale acks {result['stale'][:3]}")
                with lock:
                    acked.extend(m.event["position"] for m in messages)
        except Exception as exc:
            errors.append(f"{name}: {exc!r}")
        finally:
            connection.close()

    threads = [threading.Thread(target=consume, args=(f"c{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert len(acked) == 5000 and len(set(acked)) == 5000  # each event acked exactly once
    assert {m.event["position"] for m in doomed} <= set(acked)
    last_version: dict[str, int] = {}
    for stream, version in processed:
        assert version == last_version.get(stream, -1) + 1, (stream, version)  # order kept per stream
        last_version[stream] = version
    assert sum(v + 1 for v in last_version.values()) == 5000
