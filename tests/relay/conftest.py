"""Fixtures of the relay tests: a fresh destination per test on each real broker, relay processes."""

from __future__ import annotations

import pytest

from tests.relay.helpers import KafkaBroker, NatsBroker, RedisBroker, RelayProcess


@pytest.fixture(params=["redis", "kafka", "nats"])
def broker(request):
    """The shared broker of the machine (or the suite's own), with names unique to this test."""
    if request.param == "redis":
        target = RedisBroker(request.getfixturevalue("redis_url"))
    elif request.param == "kafka":
        target = KafkaBroker(request.getfixturevalue("kafka_bootstrap"))
    else:
        target = NatsBroker(request.getfixturevalue("nats_url"))
    yield target
    target.cleanup()


@pytest.fixture
def relay_process(transactional_db):
    """``relay_process(broker, **env)`` starts a relay subprocess; all are stopped after the test."""
    started: list[RelayProcess] = []

    def start(broker, **env) -> RelayProcess:
        process = RelayProcess(broker, **env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
