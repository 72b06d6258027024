"""Live feed latency: commit -> websocket receipt, with 1, 100 and 1000 clients, against LISTEN/NOTIFY.

    python -m bench.live                       # 1, 100, 1000 clients: 3 rounds of 10 s each at 1000 events/s
    python -m bench.live --clients 1,100 --seconds 5 --rounds 1
    python -m bench.live --long                # + 100 clients for 10 minutes: server memory over time

One uvicorn process (``--workers`` N: N processes, each tailing the log) serves the feeds (as
``make run`` does), on a fresh database. Appender threads, in a process of their own, append
single-event transactions through ``events.services.append`` at ``--rate`` events/s, each noting
when its append returned (committed). Every connected client receives every event:

- ``--probes`` clients (``websockets``) parse each message and note when it arrived; latency is
  receipt minus commit, over every event of every probe.
- the other clients are raw sockets that complete the handshake and then count what arrives
  with one ``bytes.count`` per read, so the load generator (uvloop), which shares the machine's
  cores with the server, stays cheap while the server still sends every event to every client.

The ceiling, measured in the same run on the same server: raw LISTEN/NOTIFY, one NOTIFY per
transaction at the same rate (delivery latency) and as fast as one sender can go (notifies/s).
Server memory (RSS) is sampled every second; server CPU is that of all its processes. Each client
count runs ``--rounds`` times; the table shows the median round by p99 (a single round's p99
moves by several milliseconds with the machine), and every round's p99 is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import resource
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import uvloop

from bench import common

DATABASE = "flunq_bench_live"
_ids = itertools.count()  # event ids, unique over the whole run


# --- server memory -------------------------------------------------------------------------------


def server_pids(port: int) -> list[int]:
    """The uvicorn process listening on ``port`` and its descendants (its ``--workers``)."""
    parents: dict[int, int] = {}
    main = None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
            if b"uvicorn" in b" ".join(arguments) and str(port).encode() in arguments:
                main = int(entry.name)
    if main is None:
        return []
    pids = [main]
    for pid in pids:  # grows while it is walked: children, grandchildren, ...
        pids += [child for child, parent in parents.items() if parent == pid]
    return pids


def run_queue_seconds(pids: list[int]) -> float:
    """Time the processes' main threads (the event loops) were ready to run but waited for a core."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += int(Path(f"/proc/{pid}/schedstat").read_text().split()[1])
    return total / 1e9


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


class MemorySampler:
    def __init__(self, pids: list[int], every: float = 1.0) -> None:
        self.pids, self.every = pids, every
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self.samples.append((time.monotonic() - self._start, rss_mb(self.pids)))
            self._stop.wait(self.every)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# --- clients -------------------------------------------------------------------------------------


MARK = b'{"specversion"'  # how every event frame's payload starts


class Sink(asyncio.Protocol):
    """A websocket client that completes the handshake and discards everything after it, counting
    events: one ``bytes.count`` per read (the socket is read in big chunks), no frame parsing."""

    def __init__(self) -> None:
        self.caught_up = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.received = 0
        self.events = 0
        self._tail = b""
        self._head = b""

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        # A marker split across two reads is found in the previous read's tail + this one's head.
        self.events += data.count(MARK) + (self._tail + data[: len(MARK) - 1]).count(MARK)
        self._tail = data[1 - len(MARK) :]
        if not self.caught_up.done():
            self._head += data
            if b"caught_up" in self._head:
                self.caught_up.set_result(True)
                self._head = b""

    def connection_lost(self, exc) -> None:
        if not self.closed.done():
            self.closed.set_result(time.monotonic())


async def open_sink(base: str) -> tuple[asyncio.Transport, Sink]:
    parts = urlsplit(base)
    loop = asyncio.get_running_loop()
    transport, sink = await loop.create_connection(Sink, parts.hostname, parts.port)
    transport.write(
        (
            f"GET /ws/events HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: {base}\r\n\r\n"
        ).encode()
    )
    await asyncio.wait_for(sink.caught_up, 60)
    return transport, sink


class Sinks:
    """``count`` sinks in a process of their own, so that reading 100k messages/s shares no
    interpreter lock with the probes' timing and the appender threads."""

    def __init__(self, base: str, count: int) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_sinks_main, args=(base, count, child), daemon=True)
        self._process.start()

    async def ready(self) -> None:
        assert await asyncio.to_thread(self._pipe.recv) == "ready"

    def cpu(self) -> float:
        return common.cpu_seconds([self._process.pid])

    async def stop(self) -> tuple[int, int, float | None]:
        """Events counted, sinks the server closed, when the first was closed (monotonic)."""
        self._pipe.send("stop")
        result = await asyncio.to_thread(self._pipe.recv)
        await asyncio.to_thread(self._process.join)
        return result


def _sinks_main(base: str, count: int, pipe) -> None:
    async def hold() -> None:
        sinks: list[tuple[asyncio.Transport, Sink]] = []
        for chunk in range(0, count, 50):
            sinks += await asyncio.gather(*(open_sink(base) for _ in range(min(50, count - chunk))))
        pipe.send("ready")
        await asyncio.to_thread(pipe.recv)
        closed = [sink.closed.result() for _, sink in sinks if sink.closed.done()]
        pipe.send((sum(sink.events for _, sink in sinks), len(closed), min(closed, default=None)))
        for transport, _ in sinks:
            transport.close()

    uvloop.run(hold())


@dataclass
class Probe:
    arrivals: dict[int, float] = field(default_factory=dict)
    resyncs: int = 0


async def run_probe(base: str, probe: Probe, ready: asyncio.Event, stop: asyncio.Event) -> None:
    from websockets.asyncio.client import connect

    url = base.replace("http://", "ws://") + "/ws/events"
    clock = time.perf_counter
    async with connect(url, origin=base, proxy=None, compression=None, max_queue=None) as ws:
        async for raw in ws:
            arrived = clock()
            message = orjson.loads(raw)
            if "specversion" in message:
                probe.arrivals[message["position"]] = arrived
            elif message["type"] == "caught_up":
                ready.set()
            elif message["type"] == "resync":
                probe.resyncs += 1
            if stop.is_set():
                return


# --- appends -------------------------------------------------------------------------------------


def append_paced(rate: float, seconds: float, threads: int) -> tuple[dict[int, float], float]:
    """Single-event appends at ``rate`` over ``threads`` threads; commit time per position."""
    from django.db import connection

    from events import services
    from events.cloudevents import from_structured

    commits: dict[int, float] = {}
    interval = threads / rate
    clock = time.perf_counter
    start = clock() + 0.05

    def worker(number: int) -> None:
        try:
            due = start + number * interval / threads
            end = start + seconds
            while due < end and clock() < end:  # behind schedule: stop at the end anyway
                delay = due - clock()
                if delay > 0:
                    time.sleep(delay)
                event = from_structured(
                    {
                        "specversion": "1.0",
                        "id": f"live-{next(_ids)}",
                        "source": "bench",
                        "type": "task.completed",
                        "executionid": f"x{number}",
                        "data": common.PAYLOAD,
                    }
                )
                position = services.append([event]).events[0].position
                commits[position] = clock()
                due += interval
        finally:
            connection.close()

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return commits, clock() - start


class Appenders:
    """The appender threads in a process of their own (spawned once per run), so that their work
    in Django holds no interpreter lock the probes need to note an arrival. Commit and arrival
    times are both ``time.perf_counter()``: CLOCK_MONOTONIC, one clock for every process."""

    def __init__(self) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_appenders_main, args=(child,), daemon=True)
        self._process.start()
        if (greeting := self._pipe.recv()) != "ready":  # not an assert: python -O would skip the recv
            raise RuntimeError(f"the appenders' process did not start: {greeting!r}")

    def cpu(self) -> float:
        return common.cpu_seconds([self._process.pid])

    async def run(self, rate: float, seconds: float, threads: int) -> tuple[dict[int, float], float]:
        """``append_paced`` in the appenders' process."""
        self._pipe.send((rate, seconds, threads))
        return await asyncio.to_thread(self._pipe.recv)

    def close(self) -> None:
        self._pipe.send(None)
        self._process.join()


def _appenders_main(pipe) -> None:
    import django

    django.setup()  # DATABASE_URL and the settings module come with the parent's environment
    pipe.send("ready")
    while (job := pipe.recv()) is not None:
        pipe.send(append_paced(*job))


# --- one round -----------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    clients: int
    appended_rate: float
    delivered_rate: float
    latencies: list[float]
    resyncs: int
    closed_sinks: int
    rss: tuple[float, float, float] | None = None  # start, end, max (MB)
    server_cpu: float | None = None  # CPU seconds the server used during the round
    seconds: float = 0.0

    def p99(self) -> float:
        return common.percentile(self.latencies, 99)

    def cells(self) -> list[str]:
        p50 = common.percentile(self.latencies, 50) * 1000
        p99 = self.p99() * 1000
        top = max(self.latencies, default=0) * 1000
        rss = f"{self.rss[0]:.0f} -> {self.rss[1]:.0f} (max {self.rss[2]:.0f})" if self.rss else ""
        delivered = self.delivered_rate * self.seconds
        cpu = f"{self.server_cpu * 1e6 / delivered:.1f}" if self.server_cpu and delivered else ""
        return [self.name, str(self.clients), f"{self.appended_rate:,.0f}", f"{self.delivered_rate:,.0f}",
                f"{p50:.2f}", f"{p99:.2f}", f"{top:.2f}", str(self.resyncs + self.closed_sinks), cpu, rss]  # fmt: skip


def median_round(rounds: list[Result]) -> Result:
    """The round whose p99 is the median of the rounds' (the upper one of an even count); the
    others' p99 are printed, so the spread shows next to it."""
    ordered = sorted(rounds, key=Result.p99)
    if len(rounds) > 1:
        print(
            f"  p99 per round, ms: {', '.join(f'{r.p99() * 1000:.2f}' for r in rounds)}; the table shows the median round",
            flush=True,
        )
    return ordered[len(ordered) // 2]


async def feed_round(
    base: str, pids: list[int], clients: int, probes: int, args, appenders: Appenders
) -> Result:
    probes = min(probes, clients)
    sinks = Sinks(base, clients - probes)
    await sinks.ready()
    stop = asyncio.Event()
    states = [Probe() for _ in range(probes)]
    readies = [asyncio.Event() for _ in range(probes)]
    tasks = [asyncio.create_task(run_probe(base, s, r, stop)) for s, r in zip(states, readies, strict=True)]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)

    sampler = MemorySampler(pids) if pids else contextlib.nullcontext()
    user_before, system_before = common.cpu_times(pids)
    waited_before = run_queue_seconds(pids)
    probes_waited_before = run_queue_seconds([os.getpid()])
    own_before = time.process_time() + sinks.cpu() + appenders.cpu()
    appends_began = time.monotonic()
    with sampler:
        commits, elapsed = await appenders.run(args.rate, args.seconds, args.threads)
        last = max(commits)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(last in s.arrivals for s in states):
            await asyncio.sleep(0.05)
    user, system = (
        after - before
        for after, before in zip(common.cpu_times(pids), (user_before, system_before), strict=True)
    )
    server_cpu = user + system if pids else None
    own_cpu = time.process_time() + sinks.cpu() + appenders.cpu() - own_before
    window = time.monotonic() - appends_began
    print(
        f"  CPU over {window:.1f} s: server {user + system:.1f} s ({(user + system) / window:.2f} cores; "
        f"user {user:.1f} s, system {system:.1f} s; waited for a core {run_queue_seconds(pids) - waited_before:.1f} s), "
        f"load generator {own_cpu:.1f} s ({own_cpu / window:.2f} cores; its probes' loop waited for a core "
        f"{run_queue_seconds([os.getpid()]) - probes_waited_before:.1f} s)",
        flush=True,
    )
    events, closed, first = await sinks.stop()
    delivered = events + sum(len(s.arrivals) for s in states)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if closed:
        print(
            f"  {closed} sinks closed by the server, the first {first - appends_began:.1f} s into the appends"
        )
    latencies = [arrived - commits[p] for s in states for p, arrived in s.arrivals.items() if p in commits]
    missing = sum(1 for s in states for p in commits if p not in s.arrivals)
    if missing:
        print(f"  warning: {missing} events did not reach a probe within 30 s", flush=True)
    rss = None
    if pids and sampler.samples:
        values = [mb for _, mb in sampler.samples]
        rss = (values[0], values[-1], max(values))
    return Result(
        name="websocket feed",
        clients=clients,
        appended_rate=len(commits) / elapsed,
        delivered_rate=delivered / window,
        latencies=latencies,
        resyncs=sum(s.resyncs for s in states),
        closed_sinks=closed,
        rss=rss,
        server_cpu=server_cpu,
        seconds=window,
    )


async def tailer_round(args, appenders: Appenders) -> Result:
    """Commit -> a batch in a mailbox of a log tailer in this process: the feed minus websockets."""
    from live.tailer import LogTailer

    tailer = LogTailer(page_size=500, poll_seconds=1.0)
    mailbox = tailer.subscribe(10**9)
    arrivals: dict[int, float] = {}

    async def drain() -> None:
        clock = time.perf_counter
        while True:
            await mailbox.wait(None)
            while (batch := mailbox.take()) is not None:
                now = clock()
                for live in batch.events:
                    arrivals[live.position] = now

    task = asyncio.create_task(drain())
    await tailer.started.wait()
    commits, elapsed = await appenders.run(args.rate, args.seconds, args.threads)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and max(commits) not in arrivals:
        await asyncio.sleep(0.05)
    task.cancel()
    await tailer.stop()
    latencies = [arrivals[p] - t for p, t in commits.items() if p in arrivals]
    rate = len(commits) / elapsed
    return Result("log tailer (no websocket)", 0, rate, rate, latencies, 0, 0, seconds=elapsed)


# --- LISTEN/NOTIFY ceiling -----------------------------------------------------------------------


async def notify_round(url: str, rate: float | None, seconds: float) -> Result:
    """NOTIFY (one per transaction) from a thread; LISTEN on an async connection."""
    import psycopg

    arrivals: list[tuple[float, float]] = []
    listener = await psycopg.AsyncConnection.connect(url, autocommit=True)
    await listener.execute("LISTEN bench_live")
    done = asyncio.Event()
    count = 0

    async def listen() -> None:
        clock = time.perf_counter
        async for note in listener.notifies():
            arrivals.append((float(note.payload), clock()))
            if done.is_set() and len(arrivals) >= count:
                return

    def send() -> tuple[int, float]:
        clock = time.perf_counter
        sent = 0
        with psycopg.connect(url, autocommit=True) as conn:
            start = clock()
            due = start
            while clock() - start < seconds:
                if rate:
                    delay = due - clock()
                    if delay > 0:
                        time.sleep(delay)
                    due += 1 / rate
                conn.execute("SELECT pg_notify('bench_live', %s)", [repr(clock())])
                sent += 1
            return sent, clock() - start

    task = asyncio.create_task(listen())
    count, elapsed = await asyncio.to_thread(send)
    done.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(task, 30)
    task.cancel()
    await listener.close()
    latencies = [received - sent for sent, received in arrivals]
    name = f"LISTEN/NOTIFY at {rate:,.0f}/s" if rate else "LISTEN/NOTIFY ceiling (1 sender)"
    return Result(name, 1, count / elapsed, len(arrivals) / elapsed, latencies, 0, 0, seconds=elapsed)


# --- main ----------------------------------------------------------------------------------------

HEADER = ["work", "clients", "appended/s", "delivered msg/s", "p50 ms", "p99 ms", "max ms", "resyncs",
          "server CPU us/msg", "server RSS MB"]  # fmt: skip


def table(results: list[Result]) -> str:
    rows = [HEADER, *(r.cells() for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def markdown(results: list[Result]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + " --- |" * len(HEADER)]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in results]
    return "\n".join(lines)


async def run(args, url: str) -> None:
    print("machine:", ", ".join(f"{k} {v}" for k, v in common.server_facts(url).items()), flush=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))
    counts = [int(c) for c in args.clients.split(",")]
    appenders = Appenders()
    results: list[Result] = [
        await notify_round(url, args.rate, args.seconds),
        await notify_round(url, None, 3),
        await tailer_round(args, appenders),
    ]
    environ = {"DATABASE_URL": url, "AUTH_REQUIRED": "false"}
    # The raw sink clients discard what arrives, pings included: no keep-alive pings in the run.
    with common.serve_asgi(environ, workers=args.workers, extra_args=["--ws-ping-interval", "0"]) as base:
        pids = server_pids(urlsplit(base).port)
        for clients in counts:
            rounds = []
            for number in range(1, args.rounds + 1):
                print(
                    f"... {clients} client(s) for {args.seconds:g} s at {args.rate:g} events/s"
                    + (f", round {number} of {args.rounds}" if args.rounds > 1 else ""),
                    flush=True,
                )
                rounds.append(await feed_round(base, pids, clients, args.probes, args, appenders))
            results.append(median_round(rounds))
        print(table(results), flush=True)
        if args.markdown:
            print(markdown(results), flush=True)
        hundred = next((r for r in results if r.clients == 100 and r.name == "websocket feed"), None)
        if hundred is not None:
            p99 = hundred.p99() * 1000
            median = f" (the median of {args.rounds} rounds)" if args.rounds > 1 else ""
            print(
                f"target p99 < 25 ms at 100 clients: {p99:.2f} ms{median}, {'met' if p99 < 25 else 'MISSED'}"
            )
        if args.long:
            await long_run(base, pids, args, appenders)
    appenders.close()
    common.drop_database(DATABASE)


async def long_run(base: str, pids: list[int], args, appenders: Appenders) -> None:
    """100 clients for --long-seconds: server RSS every 30 s (flat means no leak per event)."""
    long_args = argparse.Namespace(**{**vars(args), "seconds": args.long_seconds})
    print(f"... long run: 100 clients for {args.long_seconds:g} s at {args.rate:g} events/s", flush=True)
    sampler = MemorySampler(pids, every=30.0) if pids else contextlib.nullcontext()
    with sampler:
        result = await feed_round(base, [], 100, args.probes, long_args, appenders)
    print(table([result]), flush=True)
    if pids:
        series = ", ".join(f"{t:.0f}s {mb:.0f}" for t, mb in sampler.samples)
        print(f"server RSS MB over time: {series}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live", description=__doc__.split("\n")[0])
    parser.add_argument("--clients", default="1,100,1000", help="client counts, comma-separated")
    parser.add_argument("--rate", type=float, default=1000.0, help="appended events per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per client count")
    parser.add_argument("--threads", type=int, default=8, help="appender threads")
    parser.add_argument("--workers", type=int, default=1, help="server processes (uvicorn --workers)")
    parser.add_argument("--probes", type=int, default=4, help="clients that measure latency")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds per client count; the table shows the median (by p99)"
    )
    parser.add_argument("--long", action="store_true", help="add a 10-minute run with 100 clients")
    parser.add_argument("--long-seconds", type=float, default=600.0)
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    args = parser.parse_args(argv)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    url = common.setup_django(DATABASE, AUTH_REQUIRED="false")
    uvloop.run(run(args, url))  # the load generator's loop, as cheap as the server's
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
