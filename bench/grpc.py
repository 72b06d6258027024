"""gRPC appends next to REST appends, in one run, on one PostgreSQL, with the same event.

    python -m bench.grpc             # 5 interleaved rounds of each
    python -m bench.grpc --quick     # 3 smaller rounds, well under a minute
    python -m bench.grpc --markdown  # the table as Markdown

Both servers run as ``make run`` runs them (``manage.py grpcserver`` with its ``GRPC_DB_THREADS``
persistent connections; uvicorn with the ASGI app and a psycopg pool of ``--http-pool``), as
subprocesses, with auth off, on a fresh database. Work, each as events/s with p50/p99 per call:

- one event per call, one client: ``Publish`` against ``POST /api/v1/events``;
- one event per call, N concurrent calls: N concurrent gRPC calls multiplexed on one channel
  (HTTP/2 streams) against N keep-alive HTTP/1.1 connections;
- 100 events per call: ``PublishBatch`` against a ``application/cloudevents-batch+json`` POST.

Every event gets its own execution, so its own stream, as in ``bench.log``. The load generators
are small asyncio loops on both sides (grpc.aio; raw HTTP/1.1 in ``bench.common.http_load``) so
the client, which shares the machine's cores with the servers, costs each side alike.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

from bench import common
from bench.common import PAYLOAD, PAYLOAD_JSON, Row, Sample

DATABASE = "flunq_bench_grpc"
SOURCE = "bench"
TYPE = "task.completed"
BATCH = 100
FULL = {"rounds": 5, "single": 600, "concurrent": 2000, "batches": 40}
QUICK = {"rounds": 3, "single": 200, "concurrent": 600, "batches": 10}

_runs = itertools.count()


def _prefix() -> str:
    return f"r{next(_runs)}-{uuid.uuid4().hex[:8]}"


# --- servers -------------------------------------------------------------------------------------


@contextmanager
def serve_grpc(environ: dict[str, str]) -> Iterator[str]:
    """``manage.py grpcserver`` in a subprocess on a free port; yields ``host:port`` once SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from flunq_events.devservers import free_port

    port = free_port()
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, "manage.py", "grpcserver", "--port", str(port)],
        cwd=root,
        env={**os.environ, "LOG_LEVEL": "WARNING", **environ},
        stdout=subprocess.DEVNULL,
    )
    target = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        with grpc.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"grpcserver exited with {process.returncode} before serving")
                try:
                    if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                        break
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        yield target
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- contenders ----------------------------------------------------------------------------------


def _cloudevent(event_id: str):
    from grpc_api.generated.io.cloudevents.v1 import cloudevents_pb2 as ce

    message = ce.CloudEvent(
        id=event_id, source=SOURCE, spec_version="1.0", type=TYPE, text_data=PAYLOAD_JSON.decode()
    )
    message.attributes["executionid"].ce_string = event_id
    return message


def _json_event(event_id: str) -> dict:
    return {"specversion": "1.0", "id": event_id, "source": SOURCE, "type": TYPE, "executionid": event_id,
            "data": PAYLOAD}  # fmt: skip


def grpc_load(target: str, calls: int, concurrency: int, method: str, make_request: Callable[[int, int], object],
              events_per_call: int = 1) -> Sample:  # fmt: skip
    """``calls`` unary calls over one channel, ``concurrency`` at a time; any error fails."""
    import grpc

    from grpc_api.generated.flunq.events.v1 import events_pb2_grpc

    per_worker = [calls // concurrency + (1 if n < calls % concurrency else 0) for n in range(concurrency)]

    async def run() -> Sample:
        async with grpc.aio.insecure_channel(target) as channel:
            await channel.channel_ready()
            call = getattr(events_pb2_grpc.EventStoreStub(channel), method)
            latencies: list[float] = []
            clock = time.perf_counter

            async def worker(number: int) -> None:
                for index in range(per_worker[number]):
                    request = make_request(number, index)
                    began = clock()
                    await call(request)
                    latencies.append(clock() - began)

            start = clock()
            await asyncio.gather(*(worker(n) for n in range(concurrency)))
            return Sample(calls * events_per_call, clock() - start, latencies)

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grpc", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 smaller rounds")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent calls/connections (default 8)")
    parser.add_argument("--http-pool", type=int, default=16,
                        help="DB_POOL_MAX_SIZE of the ASGI server (default 16, as bench.log)")  # fmt: skip
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    sizes = dict(QUICK if args.quick else FULL)
    if args.rounds:
        sizes["rounds"] = args.rounds

    url = common.setup_django(DATABASE, AUTH_REQUIRED="false")
    from grpc_api.generated.flunq.events.v1 import events_pb2 as pb

    environ = {"DATABASE_URL": url, "AUTH_REQUIRED": "false"}
    common.log(f"database {url}; sizes {sizes}; concurrency {args.concurrency}")
    # Under ASGI each request runs in a thread of its own: without a pool, a connection per request.
    http_environ = {**environ, "DB_POOL_MAX_SIZE": str(args.http_pool)}
    with serve_grpc(environ) as target, common.serve_asgi(http_environ) as base:

        def grpc_single() -> Sample:
            prefix = _prefix()
            return grpc_load(target, sizes["single"], 1, "Publish",
                             lambda n, i: pb.PublishRequest(event=_cloudevent(f"{prefix}-{i}")))  # fmt: skip

        def rest_single() -> Sample:
            prefix = _prefix()
            return common.http_load(base, sizes["single"], 1, lambda n, i: common.post_request(
                base, "/api/v1/events", orjson.dumps(_json_event(f"{prefix}-{i}"))))  # fmt: skip

        def grpc_concurrent() -> Sample:
            prefix = _prefix()
            return grpc_load(target, sizes["concurrent"], args.concurrency, "Publish",
                             lambda n, i: pb.PublishRequest(event=_cloudevent(f"{prefix}-{n}-{i}")))  # fmt: skip

        def rest_concurrent() -> Sample:
            prefix = _prefix()
            return common.http_load(base, sizes["concurrent"], args.concurrency, lambda n, i: common.post_request(
                base, "/api/v1/events", orjson.dumps(_json_event(f"{prefix}-{n}-{i}"))))  # fmt: skip

        def grpc_batch() -> Sample:
            prefix = _prefix()
            return grpc_load(target, sizes["batches"], 1, "PublishBatch", lambda n, i: pb.PublishBatchRequest(
                events=[_cloudevent(f"{prefix}-{i}-{k}") for k in range(BATCH)]), events_per_call=BATCH)  # fmt: skip

        def rest_batch() -> Sample:
            prefix = _prefix()

            def request(n: int, i: int) -> bytes:
                body = orjson.dumps([_json_event(f"{prefix}-{i}-{k}") for k in range(BATCH)])
                return common.post_request(base, "/api/v1/events", body, "application/cloudevents-batch+json")

            sample = common.http_load(base, sizes["batches"], 1, request)
            return Sample(sample.events * BATCH, sample.seconds, sample.latencies)

        # Warm both servers (connections, imports, the token cache) outside the measurement.
        grpc_load(
            target, 20, 2, "Publish", lambda n, i: pb.PublishRequest(event=_cloudevent(f"warm-{n}-{i}"))
        )
        common.http_load(base, 20, 2, lambda n, i: common.post_request(
            base, "/api/v1/events", orjson.dumps(_json_event(f"warm-rest-{n}-{i}"))))  # fmt: skip

        rows = []
        for work, ours, other in [
            ("single append, 1 client", grpc_single, rest_single),
            (f"single append, {args.concurrency} concurrent", grpc_concurrent, rest_concurrent),
            (f"batch of {BATCH}, 1 client", grpc_batch, rest_batch),
        ]:
            common.log(work)
            samples = common.interleave(sizes["rounds"], {"grpc": ours, "rest": other}, progress=common.log)
            rows.append(
                Row(
                    work, common.summarise("gRPC", samples["grpc"]), common.summarise("REST", samples["rest"])
                )
            )

    facts = common.server_facts(url)
    print(" ".join(f"{key}={value}" for key, value in facts.items()))
    common.print_table(rows, markdown=args.markdown)
    common.drop_database(DATABASE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
