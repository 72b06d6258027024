"""Relay benchmark: throughput and commit->ack latency per backend, against the raw client.

    python -m bench.relay                                  # redis, kafka, nats; defaults below
    python -m bench.relay --backends redis --events 20000 --rounds 3
    python -m bench.relay --rss-events 1000000             # the long RSS run (default 200 000)
    python -m bench.relay --backends "" --events 0 --rss-events 1000000    # that run alone

For each backend, in the same run, on the same events (~150 bytes of data each):

- **throughput**: the relay (``relay.worker.Relay.step`` in a loop, reading from PostgreSQL,
  publishing, waiting for acks, advancing the checkpoint) against the **raw producer** of the same
  client library sending the relay's own messages, built beforehand, with the same batch size and
  waiting for acks per batch the same way: redis-py pipelined ``XADD`` (the relay's commands),
  kafka-python ``send`` + ``flush`` (its key and headers), nats-py ``publish_async`` + PubAcks (its
  subjects and headers). Rounds are interleaved (relay, raw, relay, raw, ...); medians; target
  >= 0.7x.
- **latency**: appends at a steady 1 000 events/s while the relay runs (woken by NOTIFY); for
  each event, from the moment its append committed (``append`` returned) to the moment the
  broker's ack for its batch arrived. Target p99 < 100 ms.
- **RSS**: ``manage.py relay`` in a subprocess relays ``--rss-events`` events appended as fast
  as possible; its resident memory is sampled every second.

Brokers: ``REDIS_URL`` / ``KAFKA_BROKERS`` / ``NATS_URL`` when set, else the machine's Redis on
6379 and NATS on 4222 when they answer, else servers started here (Tansu for Kafka).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from bench import common

ROOT = Path(__file__).resolve().parent.parent
_servers: list = []


# --- brokers -------------------------------------------------------------------------------------


_addresses: dict[str, str] = {}


def broker_address(alias: str) -> str:
    if alias not in _addresses:
        _addresses[alias] = _start_broker(alias)
    return _addresses[alias]


def _start_broker(alias: str) -> str:
    from flunq_events.devservers import NatsServer, RedisServer, TansuBroker

    def reachable(port: int) -> bool:
        import socket

        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    if alias == "redis":
        if os.environ.get("REDIS_URL"):
            return os.environ["REDIS_URL"]
        if reachable(6379):
            return "redis://127.0.0.1:6379/0"
        server = RedisServer().start()
        _servers.append(server)
        return server.url
    if alias == "nats":
        if os.environ.get("NATS_URL"):
            return os.environ["NATS_URL"]
        if reachable(4222):
            return "nats://127.0.0.1:4222"
        server = NatsServer().start()
        _servers.append(server)
        return server.url
    if os.environ.get("KAFKA_BROKERS"):
        return os.environ["KAFKA_BROKERS"]
    server = TansuBroker().start()
    _servers.append(server)
    return server.bootstrap


class Destination:
    """A fresh stream key / topic / JetStream stream for one round; the relay backend writing to it."""

    def __init__(self, alias: str, address: str) -> None:
        self.alias = alias
        self.address = address
        self.tag = uuid.uuid4().hex[:10]

    def options(self) -> dict:
        if self.alias == "redis":
            return {"url": self.address, "stream": f"bench:relay:{self.tag}", "maxlen": 0}
        if self.alias == "kafka":
            return {"brokers": self.address.split(","), "topic": f"bench-relay-{self.tag}", "partitions": 6}
        return {"url": self.address, "stream": f"BENCH_{self.tag}", "prefix": f"bench{self.tag}.events"}

    def env(self) -> dict[str, str]:
        options = self.options()
        if self.alias == "redis":
            return {"REDIS_URL": self.address, "REDIS_STREAM": options["stream"], "REDIS_STREAM_MAXLEN": "0"}
        if self.alias == "kafka":
            return {"KAFKA_BROKERS": self.address, "KAFKA_TOPIC": options["topic"]}
        return {
            "NATS_URL": self.address,
            "NATS_STREAM": options["stream"],
            "NATS_SUBJECT_PREFIX": options["prefix"],
        }

    def backend(self):
        from relay.backends import get_backend

        return get_backend(self.alias, **self.options())

    def cleanup(self) -> None:
        options = self.options()
        try:
            if self.alias == "redis":
                import redis

                client = redis.Redis.from_url(self.address)
                client.delete(options["stream"])
                client.close()
            elif self.alias == "kafka":
                from kafka import KafkaAdminClient

                admin = KafkaAdminClient(bootstrap_servers=self.address)
                admin.delete_topics([options["topic"]])
                admin.close()
            else:
                import nats

                async def drop() -> None:
                    nc = await nats.connect(self.address)
                    try:
                        await nc.jetstream().delete_stream(options["stream"])
                    finally:
                        await nc.close()

                asyncio.run(drop())
        except Exception as exc:  # a benchmark leftover is not worth failing the run
            common.log(f"cleanup of {self.alias} {self.tag}: {exc!r}")


# --- the raw producers ---------------------------------------------------------------------------


def raw_publish(dest: Destination, events: list, batch: int) -> float:
    """Publish ``events`` with the bare client, ``batch`` at a time, waiting for acks; seconds."""
    options = dest.options()
    if dest.alias == "redis":
        import redis

        client = redis.Redis.from_url(dest.address)
        # The same XADD commands as the relay's, built beforehand, sent without xadd()'s dict.
        commands = [
            ("XADD", options["stream"], f"{event.position}-0", *event.fields, "data", event.data)
            for event in events
        ]
        start = time.perf_counter()
        for first in range(0, len(commands), batch):
            pipe = client.pipeline(transaction=False)
            for command in commands[first : first + batch]:
                pipe.execute_command(*command)
            pipe.execute()
        seconds = time.perf_counter() - start
        client.close()
        return seconds
    if dest.alias == "kafka":
        from kafka import KafkaAdminClient, KafkaProducer
        from kafka.admin import NewTopic

        from relay.backends.kafka import headers as kafka_headers

        admin = KafkaAdminClient(bootstrap_servers=dest.address)
        admin.create_topics([NewTopic(options["topic"], options["partitions"], -1)])
        admin.close()
        producer = KafkaProducer(
            bootstrap_servers=dest.address, enable_idempotence=True, acks="all", linger_ms=2
        )
        records = [
            (
                event.stream.encode(),
                event.data,
                kafka_headers(event),
            )
            for event in events
        ]
        start = time.perf_counter()
        for first in range(0, len(records), batch):
            futures = [
                producer.send(options["topic"], key=key, value=value, headers=headers)
                for key, value, headers in records[first : first + batch]
            ]
            producer.flush()
            for future in futures:
                future.get(0)
        seconds = time.perf_counter() - start
        producer.close()
        return seconds

    import nats

    from relay.backends.nats import msg_id, subject_for

    async def run() -> float:
        nc = await nats.connect(dest.address)
        js = nc.jetstream()
        await js.add_stream(name=options["stream"], subjects=[f"{options['prefix']}.>"])
        # The relay's own messages: subject, payload and both headers, built beforehand.
        messages = [
            (
                subject_for(options["prefix"], event.type),
                event.structured(),
                {"Nats-Msg-Id": msg_id(event), "Content-Type": "application/cloudevents+json"},
            )
            for event in events
        ]
        start = time.perf_counter()
        for first in range(0, len(messages), batch):
            futures = [
                await js.publish_async(subject, payload, headers=headers)
                for subject, payload, headers in messages[first : first + batch]
            ]
            await asyncio.gather(*futures)
        seconds = time.perf_counter() - start
        await nc.close()
        return seconds

    return asyncio.run(run())


# --- the contenders ------------------------------------------------------------------------------


def append_events(count: int, *, batch: int = 100) -> None:
    from events import services
    from events.cloudevents import NewEvent

    for first in range(0, count, batch):
        services.append(
            [
                NewEvent(
                    id=uuid.uuid4().hex,
                    source="/bench/relay",
                    type="task.completed",
                    executionid=f"x{(first + i) % 200}",
                    data=common.PAYLOAD,
                    has_data=True,
                )
                for i in range(min(batch, count - first))
            ]
        )


def settle(url: str) -> None:
    """Vacuum and checkpoint after the bulk append, before any round is timed.

    So autovacuum and the checkpointer, which the append sets off, are not at work during the
    first rounds, on the cores both contenders share.
    """
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE flunq_events")
        try:
            conn.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            common.log("CHECKPOINT needs a superuser or pg_checkpoint; skipped")


def relay_round(alias: str, address: str, total: int, batch: int) -> common.Sample:
    from relay.worker import Relay

    dest = Destination(alias, address)
    relay = Relay(dest.backend(), sink=f"bench-{dest.tag}", batch_size=batch)
    assert relay.try_acquire()
    relay.backend.connect()  # like the raw producer: connecting is not part of the timing
    relay.connected = True
    start = time.perf_counter()
    published = 0

    def count(events, acked_at) -> None:
        nonlocal published
        published += len(events)

    relay.on_published = count
    while relay.step():
        pass
    seconds = time.perf_counter() - start
    relay.release()
    dest.cleanup()
    assert published == total, f"relay published {published} of {total}"
    return common.Sample(published, seconds)


def raw_round(alias: str, address: str, events: list, batch: int) -> common.Sample:
    dest = Destination(alias, address)
    seconds = raw_publish(dest, events, batch)
    dest.cleanup()
    return common.Sample(len(events), seconds)


def latency_run(alias: str, address: str, seconds: float, rate: int, batch: int) -> dict:
    """Appends at ``rate`` ev/s for ``seconds`` while the relay runs; commit->ack per event."""
    from django.db import connections

    from events import horizon, services
    from events.cloudevents import NewEvent
    from relay.worker import Relay

    dest = Destination(alias, address)
    committed: dict[str, float] = {}
    acked: dict[str, float] = {}

    def on_published(events, acked_at) -> None:
        for event in events:
            acked[event.id] = acked_at

    relay = Relay(dest.backend(), sink=f"bench-lat-{dest.tag}", batch_size=batch, poll_seconds=0.5,
                  on_published=on_published)  # fmt: skip
    # Start after everything already in the log.
    from relay.services import rewind

    rewind(relay.sink, horizon.current())
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,))
    thread.start()
    time.sleep(1.0)  # let it connect before the clock starts
    per_tick, tick = 10, 10 / rate
    next_at = time.monotonic()
    deadline = next_at + seconds
    number = 0
    while time.monotonic() < deadline:
        events = [
            NewEvent(
                id=uuid.uuid4().hex,
                source="/bench/relay",
                type="task.completed",
                executionid=f"x{(number + i) % 200}",
                data=common.PAYLOAD,
                has_data=True,
            )
            for i in range(per_tick)
        ]
        number += per_tick
        services.append(events)
        done = time.monotonic()
        for event in events:
            committed[event.id] = done
        next_at += tick
        pause = next_at - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    wait_until = time.monotonic() + 30
    while len(acked) < len(committed) and time.monotonic() < wait_until:
        time.sleep(0.05)
    stop.set()
    thread.join()
    connections.close_all()
    dest.cleanup()
    latencies = [acked[i] - committed[i] for i in committed if i in acked]
    return {
        "events": len(committed),
        "acked": len(latencies),
        "rate": len(committed) / seconds,
        "p50": common.percentile(latencies, 50),
        "p99": common.percentile(latencies, 99),
        "max": max(latencies) if latencies else 0.0,
    }


def rss_run(alias: str, address: str, total: int, url: str) -> dict:
    """``manage.py relay`` in a subprocess over ``total`` events; its RSS sampled every second."""
    import psutil

    from relay.services import rewind
    from relay.status import sink_status

    dest = Destination(alias, address)
    from events import horizon

    rewind(alias, horizon.current())
    env = {**os.environ, "DATABASE_URL": url, "BACKEND": alias, "LOG_LEVEL": "WARNING", **dest.env()}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "relay", "--backend", alias], env=env, cwd=ROOT
    )
    samples: list[tuple[float, int, float]] = []  # (seconds, checkpoint, RSS MB)
    try:
        proc = psutil.Process(process.pid)
        appender = threading.Thread(target=append_events, args=(total,), kwargs={"batch": 500})
        appender.start()
        start = time.monotonic()
        while True:
            state = sink_status(alias)
            samples.append((time.monotonic() - start, state.checkpoint, proc.memory_info().rss / 2**20))
            if not appender.is_alive() and state.lag_events == 0:
                break
            time.sleep(1.0)
        appender.join()
        seconds = time.monotonic() - start
    finally:
        process.terminate()
        process.wait(30)
        dest.cleanup()
    # From the first published batch on: before it the process is still importing and connecting.
    start_at = samples[0][1]
    rss = [mb for _, position, mb in samples if position > start_at] or [mb for *_, mb in samples]
    quarter = max(1, len(rss) // 4)
    series = samples[:: max(1, len(samples) // 10)]
    if series[-1] is not samples[-1]:
        series.append(samples[-1])
    return {
        "series": [(at, position - start_at, mb) for at, position, mb in series],
        "events": total,
        "seconds": seconds,
        "rss_first_quarter_mb": statistics.median(rss[:quarter]),
        "rss_last_quarter_mb": statistics.median(rss[-quarter:]),
        "rss_max_mb": max(rss),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="redis,kafka,nats")
    parser.add_argument("--events", type=int, default=20_000, help="events per throughput round")
    parser.add_argument("--batch", type=int, default=500, help="batch size, relay and raw alike")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--latency-rate", type=int, default=1000)
    parser.add_argument("--rss-events", type=int, default=200_000, help="0 skips the RSS run")
    parser.add_argument("--rss-backend", default="redis")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)

    url = common.setup_django("flunq_bench_relay")
    from relay.messages import read_batch

    facts = common.server_facts(url)
    common.log(f"appending {args.events} events")
    append_events(args.events)
    # The horizon is cluster-wide: another database's open transaction can hold it back a moment.
    while len(events := read_batch(0, args.events)) < args.events:
        time.sleep(0.1)
    settle(url)
    rows, notes = [], []
    aliases = [alias for alias in args.backends.split(",") if alias]  # --backends "": the RSS run only
    for alias in aliases:
        address = broker_address(alias)
        common.log(f"{alias} at {address}")
        samples = common.interleave(
            args.rounds,
            {
                "relay": lambda alias=alias, address=address: relay_round(
                    alias, address, len(events), args.batch
                ),
                "raw": lambda alias=alias, address=address: raw_round(alias, address, events, args.batch),
            },
            progress=common.log,
        )
        ours = common.summarise(f"relay {alias}", samples["relay"], latencies=False)
        raw = common.summarise(f"raw {alias}", samples["raw"], latencies=False)
        rows.append(common.Row(f"{alias} batch {args.batch}", ours, raw, target=0.7))
    # Latency runs append to the log, so they come after every throughput round.
    for alias in aliases:
        address = broker_address(alias)
        common.log(f"{alias}: latency at {args.latency_rate} ev/s for {args.latency_seconds:g}s")
        lat = latency_run(alias, address, args.latency_seconds, args.latency_rate, args.batch)
        verdict = "met" if lat["p99"] < 0.1 else "MISSED"
        notes.append(
            f"{alias}: commit->ack at {lat['rate']:,.0f} ev/s ({lat['acked']}/{lat['events']} acked): "
            f"p50 {lat['p50'] * 1000:.1f} ms, p99 {lat['p99'] * 1000:.1f} ms, max {lat['max'] * 1000:.1f} ms "
            f"(target p99 < 100 ms: {verdict})"
        )
    if args.rss_events:
        address = broker_address(args.rss_backend)
        common.log(f"RSS run: {args.rss_events} events through the {args.rss_backend} relay")
        rss = rss_run(args.rss_backend, address, args.rss_events, url)
        notes.append(
            f"{args.rss_backend} relay RSS over {rss['events']:,} events ({rss['seconds']:.0f} s): "
            f"first quarter {rss['rss_first_quarter_mb']:.1f} MB, last quarter {rss['rss_last_quarter_mb']:.1f} MB, "
            f"max {rss['rss_max_mb']:.1f} MB"
        )
        notes.append(
            "RSS over time (s: events relayed, MB): "
            + ", ".join(f"{at:.0f}: {done:,}, {mb:.1f}" for at, done, mb in rss["series"])
        )
    print(" ".join(f"{k}={v}" for k, v in facts.items()))
    common.print_table(rows, markdown=args.markdown)
    for note in notes:
        print(note)
    for server in _servers:
        server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
