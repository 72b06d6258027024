"""Soak: a 30-second broker outage under steady load; the relay must lose nothing and recover alone.

    python -m bench.relay_soak                       # NATS (file store), 1 000 ev/s, 30 s outage
    python -m bench.relay_soak --backend redis       # Redis with appendonly
    python -m bench.relay_soak --backend kafka       # Tansu: memory storage, see below
    python -m bench.relay_soak --outage 60 --rate 2000

Starts its own broker on a free port, ``manage.py relay`` in a subprocess, and writers appending
at ``--rate`` events/s for the whole run. After ``--before`` seconds it stops the broker for
``--outage`` seconds, starts it again and keeps writing ``--after`` seconds. Then it reads
everything back from the broker and checks: every event arrived, each stream in order after
dropping repeats; it prints the repeats, the checkpoint during the outage (it must not move), the
largest lag, and how long the relay took to drain the backlog after the restart.

Tansu keeps its topics in memory, so for Kafka only the events after the checkpoint the relay held
during the outage can be checked on the broker; the rest died with the stopped broker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench import common

ROOT = Path(__file__).resolve().parent.parent


def consume(alias: str, address: str, names: dict) -> list[list[tuple[str, str, int]]]:
    """Everything the broker holds: (id, stream, version) per partition, in broker order."""
    if alias == "redis":
        import redis

        client = redis.Redis.from_url(address)
        out, start = [], "-"
        while entries := client.xrange(names["stream"], min=start, count=10_000):
            out += [(f[b"id"].decode(), f[b"stream"].decode(), int(f[b"version"])) for _, f in entries]
            start = "(" + entries[-1][0].decode()
        return [out]
    if alias == "kafka":
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=address, enable_auto_commit=False)
        partitions = [
            TopicPartition(names["topic"], p) for p in consumer.partitions_for_topic(names["topic"])
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(partitions)
        out: dict[int, list] = {tp.partition: [] for tp in partitions}
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for tp, records in consumer.poll(500, max_records=10_000).items():
                for record in records:
                    headers = dict(record.headers)
                    out[tp.partition].append(
                        (headers["ce_id"].decode(), headers["ce_stream"].decode(), int(headers["ce_version"]))
                    )
        consumer.close()
        return list(out.values())

    import nats
    import orjson

    async def read() -> list:
        nc = await nats.connect(address)
        js = nc.jetstream()
        total = (await js.stream_info(names["stream"])).state.messages
        sub = await js.pull_subscribe(f"{names['prefix']}.>", stream=names["stream"])
        out = []
        while len(out) < total:
            for msg in await sub.fetch(min(1000, total - len(out)), timeout=10):
                body = orjson.loads(msg.data)
                out.append((body["id"], body["stream"], body["version"]))
                await msg.ack()
        await nc.close()
        return out

    return [asyncio.run(read())]


def verify(logged: list[tuple[int, str, str, int]], sequences) -> dict:
    seen: set[str] = set()
    received, out_of_order = 0, 0
    for sequence in sequences:
        last: dict[str, int] = {}
        for id_, stream, version in sequence:
            received += 1
            if id_ in seen:
                continue
            seen.add(id_)
            if last.get(stream, -1) >= version:
                out_of_order += 1
            last[stream] = version
    missing = sum(1 for _, id_, _, _ in logged if id_ not in seen)
    return {"logged": len(logged), "received": received, "duplicates": received - len(seen),
            "missing": missing, "out_of_order": out_of_order}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.relay_soak", description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["redis", "kafka", "nats"], default="nats")
    parser.add_argument("--rate", type=int, default=1000, help="events per second appended")
    parser.add_argument("--before", type=float, default=10.0)
    parser.add_argument("--outage", type=float, default=30.0)
    parser.add_argument("--after", type=float, default=10.0)
    args = parser.parse_args(argv)

    url = common.setup_django("flunq_bench_relay_soak")
    from django.db import connection, connections

    from events import horizon, services
    from events.cloudevents import NewEvent
    from flunq_events.devservers import NatsServer, RedisServer, TansuBroker
    from relay.status import sink_status

    workdir = Path(tempfile.mkdtemp(prefix="relay-soak-"))
    tag = uuid.uuid4().hex[:8]
    if args.backend == "redis":
        server = RedisServer(workdir=workdir, appendonly=True).start()
        address, names = server.url, {"stream": f"soak:{tag}"}
        env = {"REDIS_URL": address, "REDIS_STREAM": names["stream"]}
    elif args.backend == "kafka":
        server = TansuBroker(workdir=workdir).start()
        address, names = server.bootstrap, {"topic": f"soak-{tag}"}
        env = {"KAFKA_BROKERS": address, "KAFKA_TOPIC": names["topic"]}
    else:
        server = NatsServer(workdir=workdir).start()
        address, names = server.url, {"stream": f"SOAK_{tag}", "prefix": f"soak{tag}.events"}
        env = {"NATS_URL": address, "NATS_STREAM": names["stream"], "NATS_SUBJECT_PREFIX": names["prefix"]}
    log = open(workdir / "relay.log", "wb")  # noqa: SIM115 - open for the whole run
    relay = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "relay", "--backend", args.backend],
        env={**os.environ, "DATABASE_URL": url, "BACKEND": args.backend, **env},
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip

    stop = threading.Event()

    def write() -> None:
        per_tick = 10
        next_at = time.monotonic()
        number = 0
        while not stop.is_set():
            services.append([
                NewEvent(id=uuid.uuid4().hex, source="/bench/soak", type="task.completed",
                         executionid=f"x{(number + i) % 100}", data=common.PAYLOAD, has_data=True)
                for i in range(per_tick)
            ])  # fmt: skip
            number += per_tick
            next_at += per_tick / args.rate
            stop.wait(max(0.0, next_at - time.monotonic()))
        connections.close_all()

    writer = threading.Thread(target=write)
    writer.start()
    max_lag = 0

    def watch(seconds: float) -> None:
        nonlocal max_lag
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            max_lag = max(max_lag, sink_status(args.backend).lag_events)
            time.sleep(0.5)

    try:
        watch(args.before)
        server.stop()
        common.log(f"broker stopped for {args.outage:g} s")
        time.sleep(min(args.outage, 3.0))
        stalled = sink_status(args.backend).checkpoint
        watch(args.outage - min(args.outage, 3.0))
        moved = sink_status(args.backend).checkpoint != stalled
        error = sink_status(args.backend).last_error
        server.start()
        restarted = time.monotonic()
        backlog = horizon.current()
        common.log("broker started again")
        drained = None
        until = time.monotonic() + args.after
        while time.monotonic() < until or drained is None:
            state = sink_status(args.backend)
            max_lag = max(max_lag, state.lag_events)
            if drained is None and state.checkpoint >= backlog:
                drained = time.monotonic() - restarted
            if time.monotonic() > until + 300:
                break
            time.sleep(0.2)
        stop.set()
        writer.join()
        final = horizon.current()
        while sink_status(args.backend).checkpoint < final:
            time.sleep(0.2)
        with connection.cursor() as cursor:
            cursor.execute('SELECT "position", id, stream, "version" FROM flunq_events ORDER BY "position"')
            logged = cursor.fetchall()
        if args.backend == "kafka":
            logged = [row for row in logged if row[0] > stalled]
        result = verify(logged, consume(args.backend, address, names))
    finally:
        stop.set()
        relay.terminate()
        relay.wait(30)
        server.close()
    print(f"backend={args.backend} rate={args.rate}/s outage={args.outage:g}s")
    print(
        f"checkpoint during the outage: {stalled} ({'MOVED' if moved else 'held'}); last_error: {error[:120]}"
    )
    print(f"largest lag: {max_lag} positions; backlog drained {drained:.1f} s after the broker came back"
          if drained is not None else "backlog NOT drained")  # fmt: skip
    print(" ".join(f"{k}={v}" for k, v in result.items()))
    ok = result["missing"] == 0 and result["out_of_order"] == 0 and not moved
    print("PASS: nothing lost, order kept" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
