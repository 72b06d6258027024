"""Subscriptions: webhook delivery, consumer-group fetch/ack, and the lag a burst leaves behind.

    python -m bench.subscriptions                        # 5 rounds of 2000 events; a 100k burst
    python -m bench.subscriptions --rounds 3 --events 1000 --burst 10000

On a fresh database, with the event of every benchmark (~150 bytes of ``data``) spread over
``--streams`` streams:

- **webhook delivery**: a webhook subscription and one in-process ``Deliverer`` (the step loop of
  ``manage.py deliver``, ``--concurrency`` parallel requests) drain a round of ``--events`` events
  to a local receiver (uvicorn in a subprocess, answering 204). Ceiling, interleaved with it: the
  same number of signed POSTs of the same bodies, with the same concurrency and HTTP client, and
  no database at all.
- **fetch/ack**: a pull subscription served by uvicorn; ``--consumers`` consumer threads fetch
  (100 at a time) and ack over HTTP until the round is drained. Ceiling: the same threads reading
  the same events as plain pages of ``GET /api/v1/events`` (no leases, no acks).
- **lag after a burst**: ``--burst`` events appended as fast as one appender can, then one
  deliverer drains a webhook subscription; prints the lag at the end of the burst and the time
  until it is back to zero.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import common

DATABASE = "flunq_bench_subscriptions"


async def receiver_app(scope, receive, send) -> None:
    """The webhook receiver: reads the body, answers 204 (run by uvicorn in a subprocess)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


class Receiver:
    def __init__(self) -> None:
        from flunq_events.devservers import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.subscriptions:receiver_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=Path(__file__).resolve().parent.parent,
        )
        import httpx

        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.post(self.url, content=b"{}")
                return
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def append_round(events: int, streams: int, batch: int = 500) -> list[int]:
    from events.cloudevents import from_structured
    from events.services import append

    positions: list[int] = []
    for start in range(0, events, batch):
        items = [
            from_structured(
                {
                    "specversion": "1.0",
                    "id": uuid.uuid4().hex,
                    "source": "/bench",
                    "type": "task.completed",
                    "executionid": f"b{(start + i) % streams}",
                    "data": common.PAYLOAD,
                }
            )
            for i in range(min(batch, events - start))
        ]
        positions += [item.position for item in append(items).events]
    return positions


def lag(subscription_id) -> int:
    from subscriptions.models import Subscription
    from subscriptions.selectors import progress

    subscription = Subscription.objects.get(id=subscription_id)
    return progress([subscription])[subscription.id]["lag"]


# --- webhooks ------------------------------------------------------------------------------------


def webhook_round(deliverer, subscription_id, events: int, streams: int) -> common.Sample:
    append_round(events, streams)
    start = time.perf_counter()
    while True:
        deliverer.step()
        if lag(subscription_id) == 0:
            break
    return common.Sample(events, time.perf_counter() - start)


def ceiling_round(receiver: Receiver, secret: str, bodies: list[bytes], concurrency: int) -> common.Sample:
    from subscriptions import webhooks

    clients = [webhooks.new_client() for _ in range(concurrency)]

    def post(index: int) -> None:
        webhooks.send(clients[index % concurrency], receiver.url, secret, f"ceiling-{index}", bodies[index])

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(post, range(len(bodies))))
    seconds = time.perf_counter() - start
    for client in clients:
        client.close()
    return common.Sample(len(bodies), seconds)


# --- pull ----------------------------------------------------------------------------------------


def pull_round(base: str, subscription_id: str, events: int, streams: int, consumers: int) -> common.Sample:
    import httpx

    append_round(events, streams)
    acked = [0]
    lock = threading.Lock()

    def consume(name: str) -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            while True:
                with lock:
                    if acked[0] >= events:
                        return
                messages = http.post(
                    f"/api/v1/subscriptions/{subscription_id}/fetch",
                    json={"consumer": name, "max_events": 100},
                ).json()["messages"]
                if not messages:
                    time.sleep(0.005)
                    continue
                http.post(
                    f"/api/v1/subscriptions/{subscription_id}/ack",
                    json={"consumer": name, "ack_ids": [m["ack_id"] for m in messages]},
                )
                with lock:
                    acked[0] += len(messages)

    start = time.perf_counter()
    threads = [threading.Thread(target=consume, args=(f"c{n}",)) for n in range(consumers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return common.Sample(acked[0], time.perf_counter() - start)


def pages_round(base: str, first: int, last: int, consumers: int) -> common.Sample:
    import httpx

    bounds = [first - 1 + (last - first + 1) * n // consumers for n in range(consumers + 1)]
    counts = [0] * consumers

    def read(number: int) -> None:
        after, end = bounds[number], bounds[number + 1]
        with httpx.Client(base_url=base, timeout=60) as http:
            while after < end:
                page = http.get("/api/v1/events", params={"after": after, "limit": 100}).json()
                events = [e for e in page["events"] if e["position"] <= end]
                counts[number] += len(events)
                after = page["next_after"] if page["events"] else end

    start = time.perf_counter()
    threads = [threading.Thread(target=read, args=(n,)) for n in range(consumers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return common.Sample(sum(counts), time.perf_counter() - start)


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.subscriptions", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--events", type=int, default=2000, help="events per round")
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=16, help="parallel webhook requests")
    parser.add_argument("--consumers", type=int, default=3, help="pull consumers")
    parser.add_argument("--burst", type=int, default=100_000, help="events in the burst (0: skip)")
    parser.add_argument("--markdown", action="store_true", help="also print Markdown tables")
    args = parser.parse_args(argv)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    url = common.setup_django(DATABASE, AUTH_REQUIRED="false", WEBHOOK_ALLOWED_HOSTS="127.0.0.1")
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    from access.principal import LOCAL_DEVELOPER
    from subscriptions import services, webhooks
    from subscriptions.delivery import Deliverer
    from subscriptions.queue import load_events

    common.log(f"facts: {common.server_facts(url)}")
    receiver = Receiver()
    deliverer = Deliverer(concurrency=args.concurrency)
    rows = []
    try:
        hook = services.create_subscription(
            principal=LOCAL_DEVELOPER, name="bench-hook", kind="webhook", url=receiver.url, start="now"
        )
        sample_bodies = [
            webhooks.encode(e) for e in load_events(append_round(args.events, args.streams)).values()
        ]
        deliverer.step()
        while lag(hook.id) > 0:
            deliverer.step()
        samples = common.interleave(
            args.rounds,
            {
                "webhooks": lambda: webhook_round(deliverer, hook.id, args.events, args.streams),
                "raw POSTs": lambda: ceiling_round(receiver, hook.secret, sample_bodies, args.concurrency),
            },
            progress=common.log,
        )
        rows.append(
            common.Row(
                f"webhook delivery, {args.concurrency} parallel",
                common.summarise("deliverer", samples["webhooks"], latencies=False),
                common.summarise("raw POSTs", samples["raw POSTs"], latencies=False),
            )
        )
        services.update_subscription(hook, principal=None, state="paused")

        with common.serve_asgi({"AUTH_REQUIRED": "false"}) as base:
            group = services.create_subscription(
                principal=LOCAL_DEVELOPER, name="bench-pull", kind="pull", start="now"
            )
            ranges: list[tuple[int, int]] = []

            def pull() -> common.Sample:
                from events import horizon

                first = horizon.current() + 1
                sample = pull_round(base, str(group.id), args.events, args.streams, args.consumers)
                ranges.append((first, horizon.current()))
                return sample

            samples = common.interleave(
                args.rounds,
                {"fetch/ack": pull, "pages": lambda: pages_round(base, *ranges[-1], args.consumers)},
                progress=common.log,
            )
            rows.append(
                common.Row(
                    f"fetch/ack, {args.consumers} consumers",
                    common.summarise("fetch+ack", samples["fetch/ack"], latencies=False),
                    common.summarise("GET pages", samples["pages"], latencies=False),
                )
            )
        services.delete_subscription(group)
        common.print_table(rows)
        if args.markdown:
            common.print_table(rows, markdown=True)

        if args.burst:
            services.delete_subscription(hook)
            burst = services.create_subscription(
                principal=LOCAL_DEVELOPER, name="bench-burst", kind="webhook", url=receiver.url, start="now"
            )
            began = time.perf_counter()
            append_round(args.burst, max(args.streams, args.burst // 100), batch=1000)
            appended = time.perf_counter() - began
            peak = lag(burst.id)
            began = time.perf_counter()
            while lag(burst.id) > 0:
                deliverer.step()
            drained = time.perf_counter() - began
            print(
                f"burst of {args.burst:,} events: appended in {appended:.1f} s ({args.burst / appended:,.0f} ev/s); "
                f"lag at the end of the burst {peak:,}; drained to 0 in {drained:.1f} s "
                f"({args.burst / drained:,.0f} ev/s, {args.concurrency} parallel requests, one worker)",
                flush=True,
            )
    finally:
        deliverer.close()
        receiver.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
