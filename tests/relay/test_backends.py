"""Each real backend: message layout on the wire, re-sends, the held-open transaction, rewinds."""

from __future__ import annotations

import orjson
import psycopg
import pytest

from events import services
from events.cloudevents import derive_stream
from relay.services import rewind
from relay.worker import Relay
from tests.conftest import database_url_of_test_db
from tests.relay.helpers import append_load, assert_delivered, event, logged_events, settle

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def relay(broker):
    relay = Relay(broker.backend(), sink=broker.alias, batch_size=200)
    assert relay.try_acquire()
    yield relay
    relay.release()


def drain(relay: Relay) -> None:
    while relay.step():
        pass


def test_a_held_open_append_transaction_makes_the_relay_wait_never_skip(broker, relay):
    """Fault 5: a later append commits while an earlier one is open; nothing passes the earlier."""
    held = psycopg.connect(database_url_of_test_db())
    try:
        first = event(1)
        held.execute(
            "SELECT o_position FROM flunq_append(%s::json)",
            [orjson.dumps([first.row(derive_stream(first))]).decode()],
        )
        later = services.append([event(2)]).events[0]  # another stream: no stream lock to wait for
        drain(relay)
        assert later.event.id not in {id_ for seq in broker.consume_all() for id_, _, _ in seq}
        held.commit()
    finally:
        held.close()
    settle()
    drain(relay)
    (sequence,) = [seq for seq in broker.consume_all() if seq]
    assert [id_ for id_, _, _ in sequence] == [first.id, later.event.id]


def test_a_batch_sent_twice_is_delivered_and_deduplicable(broker, relay):
    append_load(300, writers=2, batch=30)
    settle()
    drain(relay)
    relay.disconnect()
    # As after a crash between ack and checkpoint (or a rewind): the same events again.
    rewind(broker.alias, 0)
    relay.load_checkpoint()
    drain(relay)
    report = assert_delivered(broker)
    if broker.alias == "redis":
        assert report.duplicates == 0  # Redis refuses the entry ids it has
    elif broker.alias == "nats":
        assert report.duplicates == 0  # Nats-Msg-Id inside the duplicate window
    else:
        assert report.duplicates == 300  # Kafka: consumers dedupe on ce_source + ce_id


def test_wire_layout(broker, relay):
    appended = services.append([event(9, type_="workflow.execution.started")]).events[0]
    settle()
    drain(relay)
    if broker.alias == "redis":
        import redis

        client = redis.Redis.from_url(broker.url)
        ((entry_id, fields),) = client.xrange(broker.key)
        client.close()
        assert entry_id == f"{appended.position}-0".encode()
        assert fields[b"type"] == b"workflow.execution.started"
        assert fields[b"stream"] == b"execution-x9"
        assert orjson.loads(fields[b"data"])["status"] == "completed"
    elif broker.alias == "kafka":
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
        partitions = [TopicPartition(broker.topic, p) for p in consumer.partitions_for_topic(broker.topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        records = []
        while not records:
            for batch in consumer.poll(1000).values():
                records.extend(batch)
        consumer.close()
        (record,) = records
        headers = dict(record.headers)
        assert record.key == b"execution-x9"
        assert headers["ce_type"] == b"workflow.execution.started"
        assert headers["ce_specversion"] == b"1.0"
        assert headers["ce_position"] == str(appended.position).encode()
        assert orjson.loads(record.value)["status"] == "completed"
    else:
        import asyncio

        import nats

        async def first_message():
            nc = await nats.connect(broker.url)
            try:
                sub = await nc.jetstream().pull_subscribe(f"{broker.prefix}.>", stream=broker.stream)
                (msg,) = await sub.fetch(1, timeout=5)
                return msg
            finally:
                await nc.close()

        msg = asyncio.run(first_message())
        assert msg.subject == f"{broker.prefix}.workflow.execution.started"
        assert msg.headers["Nats-Msg-Id"]
        body = orjson.loads(msg.data)
        assert (body["id"], body["position"], body["stream"]) == (
            appended.event.id,
            appended.position,
            "execution-x9",
        )
    assert logged_events()[-1][0] == appended.position
