"""Load, relay processes and per-broker verifiers for the relay's tests.

A ``Broker`` knows where one test's messages go (a fresh stream key, topic or JetStream stream on
a real server), how to start ``manage.py relay`` against it, and how to read back everything the
broker holds. ``verify`` checks what came back against the log.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from django.db import connection, connections

from events import services
from events.cloudevents import NewEvent
from relay.backends import get_backend
from relay.models import Checkpoint
from tests.conftest import ROOT, database_url_of_test_db

_ids = itertools.count(1)
SOURCE = "/relay-tests"
DATA = {"workflowid": "wf-7f3c2a9e", "taskid": "charge-card", "status": "completed", "attempt": 1,
        "output": {"amount": 129.95, "currency": "EUR", "authorised": True}}  # fmt: skip


def event(stream_number: int, type_: str = "task.completed") -> NewEvent:
    return NewEvent(id=f"e-{uuid.uuid4().hex[:12]}-{next(_ids)}", source=SOURCE, type=type_,
                    executionid=f"x{stream_number}", data=DATA, has_data=True)  # fmt: skip


def append_load(total: int, *, writers: int = 4, batch: int = 50, streams: int = 40) -> None:
    """Append ``total`` events from ``writers`` threads at once, ``batch`` events per append."""
    per_writer = total // writers

    def write(number: int) -> None:
        try:
            done = 0
            while done < per_writer:
                size = min(batch, per_writer - done)
                services.append([event((number * 7 + done + i) % streams) for i in range(size)])
                done += size
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class Background:
    """``append_load`` in a thread, for faults injected while writers are busy."""

    def __init__(self, total: int, **options) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(total,), kwargs=options)
        self.thread.start()

    def _run(self, total: int, **options) -> None:
        try:
            append_load(total, **options)
        except BaseException as exc:
            self.error = exc

    def join(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


class ContinuousLoad:
    """Writers appending until ``stop()``: faults are injected while they are busy."""

    def __init__(self, *, writers: int = 2, batch: int = 20, streams: int = 40) -> None:
        self.stopping = threading.Event()
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(target=self._write, args=(n, batch, streams)) for n in range(writers)
        ]
        for thread in self.threads:
            thread.start()

    def _write(self, number: int, batch: int, streams: int) -> None:
        try:
            done = 0
            while not self.stopping.is_set():
                services.append([event((number * 7 + done + i) % streams) for i in range(batch)])
                done += batch
                # About 500 events/s per writer at most: a steady load, not a flood that makes
                # the test slow on a small machine.
                self.stopping.wait(batch / 500)
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            connections.close_all()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join()
        if self.errors:
            raise self.errors[0]

    def __enter__(self) -> ContinuousLoad:
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join()


def logged_events() -> list[tuple[int, str, str, int]]:
    """(position, id, stream, version) of every event in the log."""
    with connection.cursor() as cursor:
        cursor.execute('SELECT "position", id, stream, "version" FROM flunq_events ORDER BY "position"')
        return cursor.fetchall()


def checkpoint(sink: str) -> int:
    row = Checkpoint.objects.filter(sink=sink).first()
    return row.position if row else 0


def wait_until(condition: Callable[[], object], timeout: float = 60, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def last_position() -> int:
    with connection.cursor() as cursor:
        cursor.execute('SELECT coalesce(max("position"), 0) FROM flunq_events')
        return cursor.fetchone()[0]


def wait_caught_up(sink: str, timeout: float = 60) -> None:
    target = last_position()
    wait_until(lambda: checkpoint(sink) >= target, timeout, f"{sink} checkpoint to reach {target}")


# --- verification ----------------------------------------------------------------------------------


@dataclass
class Report:
    received: int
    unique: int
    duplicates: int
    missing: list[str] = field(default_factory=list)
    out_of_order: list[str] = field(default_factory=list)


def verify(logged: list[tuple[int, str, str, int]], sequences: list[list[tuple[str, str, int]]]) -> Report:
    """``sequences``: (id, stream, version) per broker partition, in the order the broker holds them.

    Every logged event must be there; within each stream, first arrivals in version order.
    """
    seen: set[str] = set()
    received = 0
    out_of_order = []
    for sequence in sequences:
        last_version: dict[str, int] = {}
        for id_, stream, version in sequence:
            received += 1
            if id_ in seen:
                continue
            seen.add(id_)
            if last_version.get(stream, -1) >= version:
                out_of_order.append(f"{stream}@{version} after @{last_version[stream]}")
            last_version[stream] = version
    missing = [id_ for _, id_, _, _ in logged if id_ not in seen]
    return Report(received, len(seen), received - len(seen), missing, out_of_order)


def assert_delivered(broker: Broker, logged=None) -> Report:
    logged = logged_events() if logged is None else logged
    report = verify(logged, broker.consume_all())
    assert not report.missing, f"{len(report.missing)} of {len(logged)} events never reached {broker.alias}"
    assert not report.out_of_order, report.out_of_order[:5]
    print(f"{broker.alias}: {len(logged)} logged, {report.received} received, {report.duplicates} duplicates")
    return report


# --- brokers ----------------------------------------------------------------------------------------


class Broker:
    """One test's destination on a real server."""

    alias = ""

    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def options(self) -> dict:
        raise NotImplementedError

    def backend(self):
        return get_backend(self.alias, **self.options())

    def consume_all(self) -> list[list[tuple[str, str, int]]]:
        raise NotImplementedError

    def cleanup(self) -> None:
        pass


class RedisBroker(Broker):
    alias = "redis"

    def __init__(self, url: str) -> None:
        self.url = url
        self.key = f"test:relay:{uuid.uuid4().hex[:10]}"

    def env(self) -> dict[str, str]:
        return {"REDIS_URL": self.url, "REDIS_STREAM": self.key}

    def options(self) -> dict:
        return {"url": self.url, "stream": self.key, "timeout": 2.0}

    def consume_all(self):
        import redis

        client = redis.Redis.from_url(self.url)
        out, start = [], "-"
        while True:
            entries = client.xrange(self.key, min=start, count=10_000)
            if not entries:
                break
            for _entry_id, fields in entries:
                out.append((fields[b"id"].decode(), fields[b"stream"].decode(), int(fields[b"version"])))
            start = "(" + entries[-1][0].decode()
        client.close()
        return [out]

    def cleanup(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url)
        client.delete(self.key)
        client.close()


class KafkaBroker(Broker):
    alias = "kafka"

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.topic = f"relay-test-{uuid.uuid4().hex[:10]}"

    def env(self) -> dict[str, str]:
        return {"KAFKA_BROKERS": self.bootstrap, "KAFKA_TOPIC": self.topic, "KAFKA_TOPIC_PARTITIONS": "3"}

    def options(self) -> dict:
        return {"brokers": [self.bootstrap], "topic": self.topic, "partitions": 3, "timeout": 3.0}

    def consume_all(self):
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        try:
            partitions = [
                TopicPartition(self.topic, p) for p in consumer.partitions_for_topic(self.topic) or ()
            ]
            if not partitions:  # nothing published yet: the topic does not exist
                return []
            consumer.assign(partitions)
            consumer.seek_to_beginning()
            ends = consumer.end_offsets(partitions)
            out: dict[int, list] = {tp.partition: [] for tp in partitions}
            deadline = time.monotonic() + 60
            while any(consumer.position(tp) < ends[tp] for tp in partitions):
                assert time.monotonic() < deadline, "kafka consumer did not reach the end offsets"
                for tp, records in consumer.poll(500, max_records=10_000).items():
                    for record in records:
                        headers = dict(record.headers)
                        out[tp.partition].append(
                            (
                                headers["ce_id"].decode(),
                                headers["ce_stream"].decode(),
                                int(headers["ce_version"]),
                            )
                        )
            return list(out.values())
        finally:
            consumer.close()


class NatsBroker(Broker):
    alias = "nats"

    def __init__(self, url: str) -> None:
        self.url = url
        tag = uuid.uuid4().hex[:10]
        self.stream = f"RELAY_TEST_{tag}"
        self.prefix = f"relaytest{tag}.events"

    def env(self) -> dict[str, str]:
        return {"NATS_URL": self.url, "NATS_STREAM": self.stream, "NATS_SUBJECT_PREFIX": self.prefix}

    def options(self) -> dict:
        return {"url": self.url, "stream": self.stream, "prefix": self.prefix, "timeout": 2.0}

    def consume_all(self):
        import nats
        import nats.js.errors

        async def read() -> list:
            nc = await nats.connect(self.url)
            try:
                js = nc.jetstream()
                try:
                    total = (await js.stream_info(self.stream)).state.messages
                except nats.js.errors.NotFoundError:  # nothing published yet
                    return []
                sub = await js.pull_subscribe(f"{self.prefix}.>", stream=self.stream)
                out = []
                while len(out) < total:
                    for msg in await sub.fetch(min(1000, total - len(out)), timeout=5):
                        body = orjson.loads(msg.data)
                        out.append((body["id"], body["stream"], body["version"]))
                        await msg.ack()
                return out
            finally:
                await nc.close()

        return [asyncio.run(read())]

    def cleanup(self) -> None:
        import nats

        async def drop() -> None:
            nc = await nats.connect(self.url)
            try:
                await nc.jetstream().delete_stream(self.stream)
            except Exception:
                pass
            finally:
                await nc.close()

        asyncio.run(drop())


# --- relay processes --------------------------------------------------------------------------------


RELAY_ENV = {
    "RELAY_POLL_SECONDS": "0.2",
    "RELAY_STANDBY_POLL_SECONDS": "0.2",
    "RELAY_BACKOFF_MAX_SECONDS": "0.5",
    "RELAY_ACK_TIMEOUT_SECONDS": "3",
    "LOG_LEVEL": "INFO",
    "PYTHONUNBUFFERED": "1",
}


class RelayProcess:
    """``manage.py relay --backend X`` in a subprocess on the test database."""

    def __init__(self, broker: Broker, **extra_env: str) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="relay-", suffix=".log", delete=False)  # noqa: SIM115 - kept for the test
        env = {**os.environ, "DATABASE_URL": database_url_of_test_db(), "BACKEND": broker.alias,
               **RELAY_ENV, **broker.env(), **extra_env}  # fmt: skip
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "relay", "--backend", broker.alias],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def holder_pid(sink: str) -> int | None:
    row = Checkpoint.objects.filter(sink=sink).first()
    if row is None or not row.holder:
        return None
    return int(row.holder.rsplit(":", 1)[1])


def counts(items) -> Counter:
    return Counter(items)


def settle(timeout: float = 30) -> int:
    """Wait until the horizon covers every committed event; returns it.

    The horizon is cluster-wide: another database's open transaction on the same server holds it
    back for a moment, so a test waits for it instead of assuming it.
    """
    from events import horizon

    target = last_position()
    return wait_until(lambda: horizon.current() >= target and horizon.current(), timeout, "horizon")
