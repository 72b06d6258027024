"""The relay's steps, on the in-memory backend: order, checkpoint, failures, dead letters, rewind."""

from __future__ import annotations

import threading
import uuid

import orjson
import psycopg
import pytest

from events import services
from events.cloudevents import derive_stream
from relay.backends import BrokerUnavailable, get_backend
from relay.backends.memory import BROKERS
from relay.models import Checkpoint, DeadLetter
from relay.services import rewind
from relay.worker import Relay
from tests.conftest import database_url_of_test_db
from tests.relay.helpers import append_load, event, logged_events, settle, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def memory():
    name = uuid.uuid4().hex
    backend = get_backend("memory", name=name)
    yield backend
    BROKERS.pop(name, None)


@pytest.fixture
def relay(memory):
    relay = Relay(memory, sink="memory", batch_size=100)
    assert relay.try_acquire()
    yield relay
    relay.release()


def published_positions(memory) -> list[int]:
    return [message.position for message in memory.broker.messages]


def test_step_publishes_in_position_order_and_advances_the_checkpoint(relay, memory):
    append_load(250, writers=2, batch=25)
    settle()
    positions = [row[0] for row in logged_events()]
    assert relay.step() is True  # a full batch: maybe more
    assert relay.step() is True
    assert relay.step() is False
    assert published_positions(memory) == positions
    assert Checkpoint.objects.get(sink="memory").position == positions[-1]
    assert relay.step() is False  # nothing new: nothing sent again
    assert len(memory.broker.messages) == 250


def test_messages_carry_the_cloudevent_with_server_attributes(relay, memory):
    appended = services.append([event(1)]).events[0]
    settle()
    relay.step()
    (message,) = memory.broker.messages
    body = orjson.loads(message.structured())
    assert body["id"] == appended.event.id
    assert body["stream"] == "execution-x1"
    assert body["position"] == appended.position
    assert body["version"] == 0
    assert body["data"]["status"] == "completed"
    assert message.attribute_text()["position"] == str(appended.position)


def test_broker_down_keeps_the_checkpoint_and_records_the_error(relay, memory):
    append_load(10, writers=1, batch=10)
    settle()
    memory.broker.down = True
    with pytest.raises(BrokerUnavailable):
        relay.step()
    row = Checkpoint.objects.get(sink="memory")
    assert row.position == 0
    assert "down" in row.last_error
    assert relay.backoff() <= relay.backoff_max_seconds
    memory.broker.down = False
    relay.step()
    row.refresh_from_db()
    assert row.position == logged_events()[-1][0]
    assert row.last_error == ""
    assert len(memory.broker.messages) == 10


def test_a_rejected_event_is_dead_lettered_and_the_rest_published(relay, memory):
    appended = services.append([event(1), event(1), event(1)]).events
    settle()
    memory.broker.reject_ids.add(appended[1].event.id)
    relay.step()
    assert published_positions(memory) == [appended[0].position, appended[2].position]
    (letter,) = DeadLetter.objects.all()
    assert (letter.sink, letter.position, letter.event_id) == (
        "memory",
        appended[1].position,
        appended[1].event.id,
    )
    assert "rejected" in letter.error
    assert Checkpoint.objects.get(sink="memory").position == appended[2].position


def test_an_event_over_the_size_limit_is_dead_lettered_without_sending(memory):
    relay = Relay(memory, sink="memory", max_message_bytes=2000)
    assert relay.try_acquire()
    try:
        big = event(2)
        big.data = {"blob": "x" * 5000}
        small = services.append([event(2)]).events[0]
        settle()
        large = services.append([big]).events[0]
        settle()
        relay.step()
        assert published_positions(memory) == [small.position]
        letter = DeadLetter.objects.get()
        assert letter.position == large.position
        assert "RELAY_MAX_MESSAGE_BYTES" in letter.error
    finally:
        relay.release()


def test_a_rewind_while_running_wins_over_the_batch_in_flight(relay, memory):
    append_load(40, writers=1, batch=20)
    settle()
    positions = [row[0] for row in logged_events()]
    relay.step()
    rewind("memory", positions[9])  # publish again from the 11th event
    newer = services.append([event(3)]).events[0].position
    settle()
    relay.step()  # publishes the newer event, but its checkpoint update fails: it takes the rewind
    assert Checkpoint.objects.get(sink="memory").position == positions[9]
    relay.step()
    assert published_positions(memory)[40:] == [newer, *positions[10:], newer]


def test_a_held_open_append_holds_the_relay_back(relay, memory):
    services.append([event(4)])
    settle()
    relay.step()
    held = psycopg.connect(database_url_of_test_db())
    try:
        first = event(5)
        low = held.execute(
            "SELECT o_position FROM flunq_append(%s::json)",
            [orjson.dumps([first.row(derive_stream(first))]).decode()],
        ).fetchone()[0]
        later = services.append([event(6)]).events[0]
        assert later.position > low
        relay.step()
        assert later.event.id not in [m.id for m in memory.broker.messages]
        held.commit()
    finally:
        held.close()
    settle()
    relay.step()
    assert [m.id for m in memory.broker.messages][-2:] == [first.id, later.event.id]


def test_only_one_relay_holds_a_sink(memory):
    first = Relay(memory, sink="memory")
    second = Relay(get_backend("memory", name="other"), sink="memory")
    try:
        assert first.try_acquire()
        assert not second.try_acquire()
        first.release()
        assert second.try_acquire()
    finally:
        first.release()
        second.release()
        BROKERS.pop("other", None)


def test_run_publishes_appends_and_stops_on_request(memory):
    relay = Relay(memory, sink="memory", poll_seconds=2)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,))
    thread.start()
    try:
        wait_until(
            lambda: Checkpoint.objects.filter(sink="memory", holder__gt="").exists(), 20, "relay active"
        )
        appended = services.append([event(7)]).events[0]
        wait_until(lambda: appended.event.id in [m.id for m in memory.broker.messages], 60, "publish")
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
