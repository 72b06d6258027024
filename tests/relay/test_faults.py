"""Faults against real brokers, with ``manage.py relay`` in subprocesses.

For each backend a verifier reads everything back from the broker and checks that every event of
the log arrived at least once and that each stream's events arrived in order (after dropping
repeats); it prints how many repeats there were.

1. steady load from concurrent writers;
2. ``kill -9`` of the relay while it publishes, then a new one: nothing lost;
3. the broker stopped under load, then started again: nothing lost, the relay recovers alone;
4. two relays at once: one publishes; kill it and the other takes over;
and SIGTERM: the relay finishes its batch (acked and checkpointed) and exits 0.

(5, a held-open append transaction, is in test_backends.py.)
"""

from __future__ import annotations

import pytest

from events import horizon
from flunq_events.devservers import NatsServer, RedisServer, TansuBroker
from relay.models import Checkpoint
from tests.relay.helpers import (
    ContinuousLoad,
    KafkaBroker,
    NatsBroker,
    RedisBroker,
    append_load,
    assert_delivered,
    checkpoint,
    holder_pid,
    logged_events,
    wait_caught_up,
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_steady_load_from_concurrent_writers(broker, relay_process):
    relay = relay_process(broker)
    append_load(20_000, writers=4, batch=100)
    wait_caught_up(broker.alias, timeout=120)
    assert relay.process.poll() is None, relay.output()[-3000:]
    report = assert_delivered(broker)
    assert report.unique == 20_000


def test_kill_9_mid_batch_then_restart_loses_nothing(broker, relay_process):
    first = relay_process(broker)
    with ContinuousLoad() as load:
        wait_until(lambda: checkpoint(broker.alias) > 0, 60, "the first relay to publish")
        first.kill()
        killed_at = checkpoint(broker.alias)
        second = relay_process(broker)
        wait_until(lambda: checkpoint(broker.alias) > killed_at, 60, "the second relay to publish")
        load.stop()
    wait_caught_up(broker.alias, timeout=120)
    assert second.process.poll() is None, second.output()[-3000:]
    assert_delivered(broker)


@pytest.fixture(params=["redis", "kafka", "nats"])
def own_broker(request, tmp_path):
    """A broker process of this test's own, so it can be stopped; (server, destination)."""
    if request.param == "redis":
        server = RedisServer(workdir=tmp_path / "redis", appendonly=True).start()
        target = RedisBroker(server.url)
    elif request.param == "kafka":
        server = TansuBroker(workdir=tmp_path / "tansu").start()
        target = KafkaBroker(server.bootstrap)
    else:
        server = NatsServer(workdir=tmp_path / "nats").start()
        target = NatsBroker(server.url)
    yield server, target
    server.close()


def test_broker_outage_under_load_recovers_and_loses_nothing(own_broker, relay_process):
    server, broker = own_broker
    relay = relay_process(broker)
    with ContinuousLoad() as load:
        wait_until(lambda: checkpoint(broker.alias) > 0, 60, "the relay to publish")
        server.stop()
        # The relay notices, and from then on its checkpoint stays while the log grows.
        wait_until(lambda: Checkpoint.objects.filter(sink=broker.alias).exclude(last_error="").exists(),
                   60, "the relay to report the outage")  # fmt: skip
        stalled_at = checkpoint(broker.alias)
        wait_until(lambda: horizon.current() > stalled_at + 1000, 60, "appends to pile up during the outage")
        assert checkpoint(broker.alias) == stalled_at, "the checkpoint moved while the broker was down"
        server.start()
        wait_until(lambda: checkpoint(broker.alias) > stalled_at, 60, "the relay to publish again")
        load.stop()
    wait_caught_up(broker.alias, timeout=120)
    assert relay.process.poll() is None, relay.output()[-3000:]
    assert Checkpoint.objects.get(sink=broker.alias).last_error == ""
    logged = logged_events()
    if broker.alias == "kafka":
        # Tansu keeps topics in memory: what it acknowledged before the stop died with it, and that
        # is the broker's loss, not the relay's. What can be checked honestly: the checkpoint did
        # not move during the outage (above), and everything after it reached the new broker.
        logged = [row for row in logged if row[0] > stalled_at]
    assert_delivered(broker, logged)


def test_two_relays_one_publishes_and_the_other_takes_over(broker, relay_process):
    a, b = relay_process(broker), relay_process(broker)
    append_load(600, writers=2, batch=50)
    wait_caught_up(broker.alias)
    active = holder_pid(broker.alias)
    assert active in (a.pid, b.pid)
    standby = b if active == a.pid else a
    # Only the holder of the lock ever became active.
    assert "active at position" not in standby.output()
    (a if active == a.pid else b).kill()
    append_load(600, writers=2, batch=50)
    wait_caught_up(broker.alias)
    assert holder_pid(broker.alias) == standby.pid
    assert "active at position" in standby.output()
    assert_delivered(broker)


def test_sigterm_finishes_the_batch_and_exits_cleanly(redis_url, relay_process):
    broker = RedisBroker(redis_url)
    try:
        relay = relay_process(broker)
        with ContinuousLoad() as load:
            wait_until(lambda: checkpoint(broker.alias) > 0, 60, "the relay to publish")
            assert relay.stop() == 0, relay.output()[-3000:]
            load.stop()
        stopped_at = checkpoint(broker.alias)
        # Everything up to its checkpoint is on the broker: it stopped after acks, not before.
        assert_delivered(broker, [row for row in logged_events() if row[0] <= stopped_at])
        relay_process(broker)
        wait_caught_up(broker.alias)
        assert_delivered(broker)
    finally:
        broker.cleanup()
