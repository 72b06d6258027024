"""The event log against its peer and its ceilings, in one run on one PostgreSQL.

    python -m bench.log              # the full run (1M events in the global log; several minutes)
    python -m bench.log --quick      # smaller sizes, ~1-2 minutes
    python -m bench.log --only http --http-workers 2

Work measured, each as events/s with p50/p99 per call:

- single-event appends through ``events.services.append`` at 1 and N (8) concurrent writers;
- 100-event batch appends;
- reading the global log from the start, pages of 1000 (``events.selectors.read_all``);
- reading one 1000-event stream (``events.selectors.read_stream``);
- single-event ``POST /api/v1/events`` through the real ASGI server, next to a no-op DRF view.

The same work is done by the peer, the ``eventsourcing`` library's PostgreSQL application recorder
(its own database on the same server), and by plain psycopg against a table with the same columns
and indexes as ours (a ceiling: single INSERT per transaction, executemany 100 per transaction,
COPY, a plain SELECT). Contenders alternate round by round; figures are medians over rounds.
"""

from __future__ import annotations

import argparse
import itertools
import threading
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

import orjson

from bench import common
from bench.common import PAYLOAD, PAYLOAD_JSON, Row, Sample

DATABASE = "flunq_bench"  # the peer's is this name + "_es"
SOURCE = "bench"
TYPE = "task.completed"
PAGE = 1000

SECTIONS = ("single", "concurrent", "batch", "read", "stream", "http")
QUICK = {
    "rounds": 3,
    "single_calls": 200,
    "concurrent_calls": 100,
    "batches": 20,
    "read_events": 100_000,
    "read_rounds": 3,
    "stream_reads": 20,
    "http_requests": 500,
}

_runs = itertools.count()


def _run_id() -> str:
    """A prefix unique to one round of one contender, so ids and streams never repeat."""
    return f"r{next(_runs)}-{uuid.uuid4().hex[:8]}"


def _event(event_id: str, execution: str) -> dict:
    return {"specversion": "1.0", "id": event_id, "source": SOURCE, "type": TYPE,
            "executionid": execution, "data": PAYLOAD}  # fmt: skip


# --- contenders ----------------------------------------------------------------------------------


class Ours:
    """The service's own write and read paths, called as REST and gRPC call them."""

    def __init__(self) -> None:
        from django.db import connection

        from events import selectors, services
        from events.cloudevents import from_structured

        self.connection = connection
        self.append = services.append
        self.from_structured = from_structured
        self.read_all = selectors.read_all
        self.read_stream = selectors.read_stream

    def before(self, thread: int) -> None:
        self.connection.ensure_connection()

    def after(self, thread: int) -> None:
        self.connection.close()

    def appends(self, threads: int, calls: int) -> Sample:
        run = _run_id()

        def call(thread: int, index: int) -> int:
            self.append([self.from_structured(_event(f"{run}-{thread}-{index}", f"{run}-{thread}"))])
            return 1

        return common.run_concurrent(threads, calls, call, before=self.before, after=self.after)

    def batches(self, batches: int, size: int) -> Sample:
        run = _run_id()

        def call(index: int) -> int:
            self.append(
                [self.from_structured(_event(f"{run}-{index}-{n}", f"{run}-{index}")) for n in range(size)]
            )
            return size

        return common.timed_calls(batches, call)

    def load(self, events: int, size: int = PAGE) -> str:
        """Fill the log with ``events`` events in streams of ``size``; returns the first stream."""
        for index in range(events // size):
            self.append(
                [self.from_structured(_event(f"load-{index}-{n}", f"load-{index}")) for n in range(size)]
            )
        return "execution-load-0"

    def read_log(self, events: int) -> Sample:
        latencies: list[float] = []
        after, seen = 0, 0
        clock = _clock()
        start = clock()
        while seen < events:
            began = clock()
            page = self.read_all(after, PAGE)
            latencies.append(clock() - began)
            if not page.events:
                break
            seen += len(page.events)
            after = page.next_after
        return Sample(seen, clock() - start, latencies)

    def read_one_stream(self, name: str, reads: int) -> Sample:
        return common.timed_calls(
            reads, lambda _: len(self.read_stream(name, from_version=None, limit=PAGE).events)
        )


class Peer:
    """The ``eventsourcing`` library's PostgreSQL application recorder, configured by its environment."""

    def __init__(self, url: str, pool_size: int) -> None:
        from eventsourcing.persistence import InfrastructureFactory, StoredEvent

        parts = urlsplit(url)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parts.path.lstrip("/"),
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": parts.username or "postgres",
            "POSTGRES_PASSWORD": parts.password or "",
            "POSTGRES_POOL_SIZE": str(pool_size),
            "CREATE_TABLE": "y",
        }
        self.factory = InfrastructureFactory.construct(env=env)
        self.recorder = self.factory.application_recorder()
        self.StoredEvent = StoredEvent

    def _stored(self, originator: uuid.UUID, version: int):
        return self.StoredEvent(
            originator_id=originator, originator_version=version, topic=TYPE, state=PAYLOAD_JSON
        )

    def appends(self, threads: int, calls: int) -> Sample:
        originators = [uuid.uuid4() for _ in range(threads)]

        def call(thread: int, index: int) -> int:
            self.recorder.insert_events([self._stored(originators[thread], index)])
            return 1

        return common.run_concurrent(threads, calls, call)

    def batches(self, batches: int, size: int) -> Sample:
        def call(index: int) -> int:
            originator = uuid.uuid4()
            self.recorder.insert_events([self._stored(originator, n) for n in range(size)])
            return size

        return common.timed_calls(batches, call)

    def load(self, events: int, size: int = PAGE) -> uuid.UUID:
        first = None
        for _ in range(events // size):
            originator = uuid.uuid4()
            first = first or originator
            self.recorder.insert_events([self._stored(originator, n) for n in range(size)])
        return first

    def read_log(self, events: int) -> Sample:
        latencies: list[float] = []
        start_id, seen = 1, 0
        clock = _clock()
        start = clock()
        while seen < events:
            began = clock()
            notifications = self.recorder.select_notifications(start_id, PAGE)
            latencies.append(clock() - began)
            if not notifications:
                break
            seen += len(notifications)
            start_id = notifications[-1].id + 1
        return Sample(seen, clock() - start, latencies)

    def read_one_stream(self, originator: uuid.UUID, reads: int) -> Sample:
        return common.timed_calls(reads, lambda _: len(self.recorder.select_events(originator)))

    def close(self) -> None:
        self.factory.close()


RAW_TABLE = "bench_raw_events"
RAW_COLUMNS = "stream, version, id, source, specversion, type, executionid, data"
RAW_INSERT = f"INSERT INTO {RAW_TABLE} ({RAW_COLUMNS}) VALUES (%s, %s, %s, %s, '1.0', %s, %s, %s::json)"


class Raw:
    """Plain psycopg on a table with our columns and indexes: what PostgreSQL alone costs."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url
        self.psycopg = psycopg
        self.local = threading.local()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {RAW_TABLE}")
            conn.execute(f"CREATE TABLE {RAW_TABLE} (LIKE flunq_events INCLUDING ALL)")
            conn.execute(f"CREATE SEQUENCE IF NOT EXISTS {RAW_TABLE}_seq")
            conn.execute(
                f"ALTER TABLE {RAW_TABLE} ALTER position SET DEFAULT nextval('{RAW_TABLE}_seq'), "
                "ALTER xid SET DEFAULT pg_current_xact_id(), ALTER recordedtime SET DEFAULT now(), "
                "ALTER extensions SET DEFAULT '{}'"
            )
        self.reader = psycopg.connect(url, autocommit=True)

    def before(self, thread: int) -> None:
        self.local.conn = self.psycopg.connect(self.url, autocommit=True)

    def after(self, thread: int) -> None:
        self.local.conn.close()

    @staticmethod
    def _row(run: str, stream: str, version: int, index: str) -> tuple:
        event_id = f"{run}-{index}"
        return (f"execution-{stream}", version, event_id, SOURCE, TYPE, stream, PAYLOAD_JSON.decode())

    def inserts(self, threads: int, calls: int) -> Sample:
        run = _run_id()

        def call(thread: int, index: int) -> int:
            self.local.conn.execute(RAW_INSERT, self._row(run, f"{run}-{thread}", index, f"{thread}-{index}"))
            return 1

        return common.run_concurrent(threads, calls, call, before=self.before, after=self.after)

    def executemany(self, batches: int, size: int) -> Sample:
        run = _run_id()
        conn = self.reader

        def call(index: int) -> int:
            rows = [self._row(run, f"{run}-{index}", n, f"{index}-{n}") for n in range(size)]
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(RAW_INSERT, rows)
            return size

        return common.timed_calls(batches, call)

    def copy(self, batches: int, size: int) -> Sample:
        run = _run_id()
        conn = self.reader

        def call(index: int) -> int:
            with conn.cursor() as cursor, cursor.copy(f"COPY {RAW_TABLE} ({RAW_COLUMNS}) FROM STDIN") as copy:
                for n in range(size):
                    stream, version, event_id, source, type_, execution, data = self._row(
                        run, f"{run}-{index}", n, f"{index}-{n}"
                    )
                    copy.write_row((stream, version, event_id, source, "1.0", type_, execution, data))
            return size

        return common.timed_calls(batches, call)

    def read_log(self, events: int, columns: str) -> Sample:
        latencies: list[float] = []
        after, seen = 0, 0
        clock = _clock()
        start = clock()
        with self.reader.cursor() as cursor:
            while seen < events:
                began = clock()
                cursor.execute(
                    f'SELECT {columns} FROM flunq_events WHERE "position" > %s ORDER BY "position" LIMIT %s',
                    (after, PAGE),
                )
                rows = cursor.fetchall()
                latencies.append(clock() - began)
                if not rows:
                    break
                seen += len(rows)
                after = rows[-1][0]
        return Sample(seen, clock() - start, latencies)

    def read_one_stream(self, name: str, reads: int, columns: str) -> Sample:
        def call(_: int) -> int:
            cursor = self.reader.execute(
                f'SELECT {columns} FROM flunq_events WHERE stream = %s ORDER BY "version" LIMIT %s',
                (name, PAGE),
            )
            return len(cursor.fetchall())

        return common.timed_calls(reads, call)

    def close(self) -> None:
        self.reader.close()


def _clock() -> Callable[[], float]:
    import time

    return time.perf_counter


# --- sections ------------------------------------------------------------------------------------


def _summaries(samples: dict[str, list[Sample]]) -> dict[str, common.Summary]:
    return {name: common.summarise(name, runs) for name, runs in samples.items()}


def bench_appends(ours: Ours, peer: Peer, raw: Raw, threads: int, calls: int, rounds: int) -> list[Row]:
    samples = common.interleave(
        rounds,
        {
            "append": lambda: ours.appends(threads, calls),
            "eventsourcing": lambda: peer.appends(threads, calls),
            "psycopg INSERT": lambda: raw.inserts(threads, calls),
        },
        progress=common.log,
    )
    found = _summaries(samples)
    work = f"single append, {threads} writer{'s' if threads > 1 else ''}"
    concurrent = threads > 1
    return [
        Row(work, found["append"], found["eventsourcing"], target=4.0 if concurrent else None),
        Row(work, found["append"], found["psycopg INSERT"], target=0.6 if concurrent else None),
    ]


def bench_batches(ours: Ours, peer: Peer, raw: Raw, batches: int, size: int, rounds: int) -> list[Row]:
    samples = common.interleave(
        rounds,
        {
            "append": lambda: ours.batches(batches, size),
            "eventsourcing": lambda: peer.batches(batches, size),
            "psycopg executemany": lambda: raw.executemany(batches, size),
            "psycopg COPY": lambda: raw.copy(batches, size),
        },
        progress=common.log,
    )
    found = _summaries(samples)
    work = f"{size}-event batch append"
    return [
        Row(work, found["append"], found["eventsourcing"], target=1.5),
        Row(work, found["append"], found["psycopg executemany"]),
        Row(work, found["append"], found["psycopg COPY"]),
    ]


def load_reads(ours: Ours, peer: Peer, events: int, databases: list[str]) -> tuple[str, uuid.UUID]:
    import psycopg

    from bench.common import database_url

    common.log(f"loading {events:,} events into each log (1000-event batches)")
    first_stream = ours.load(events)
    first_originator = peer.load(events)
    for name in databases:
        with psycopg.connect(database_url(name), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
    return first_stream, first_originator


def bench_reads(ours: Ours, peer: Peer, raw: Raw, events: int, rounds: int) -> list[Row]:
    from events.selectors import COLUMNS

    samples = common.interleave(
        rounds,
        {
            "read_all": lambda: ours.read_log(events),
            "select_notifications": lambda: peer.read_log(events),
            "psycopg SELECT": lambda: raw.read_log(events, COLUMNS),
        },
        progress=common.log,
    )
    found = _summaries(samples)
    work = f"global log read, {events:,} events, pages of {PAGE}"
    return [
        Row(work, found["read_all"], found["select_notifications"], target=1.0),
        Row(work, found["read_all"], found["psycopg SELECT"]),
    ]


def bench_stream(
    ours: Ours, peer: Peer, raw: Raw, stream: str, originator, reads: int, rounds: int
) -> list[Row]:
    from events.selectors import COLUMNS

    samples = common.interleave(
        rounds,
        {
            "read_stream": lambda: ours.read_one_stream(stream, reads),
            "select_events": lambda: peer.read_one_stream(originator, reads),
            "psycopg SELECT": lambda: raw.read_one_stream(stream, reads, COLUMNS),
        },
        progress=common.log,
    )
    found = _summaries(samples)
    work = f"one {PAGE}-event stream read"
    return [
        Row(work, found["read_stream"], found["select_events"]),
        Row(work, found["read_stream"], found["psycopg SELECT"]),
    ]


def bench_http(url: str, requests: int, concurrency: int, workers: int, pool: int, rounds: int) -> list[Row]:
    environ = {
        "DATABASE_URL": url,
        "AUTH_REQUIRED": "false",
        "BENCH_NOOP_VIEW": "1",
        "DB_POOL_MAX_SIZE": str(pool),
    }
    with common.serve_asgi(environ, workers=workers) as base:

        def load(path: str) -> Callable[[], Sample]:
            def run() -> Sample:
                prefix = _run_id()

                def request(connection: int, index: int) -> bytes:
                    body = orjson.dumps(_event(f"{prefix}-{connection}-{index}", f"{prefix}-{connection}"))
                    return common.post_request(base, path, body)

                return common.http_load(base, requests, concurrency, request)

            return run

        # Warm both paths (imports, first connections) before the measured rounds.
        load("/api/v1/events")()
        load("/bench/noop")()
        samples = common.interleave(
            rounds,
            {"POST /api/v1/events": load("/api/v1/events"), "POST no-op view": load("/bench/noop")},
            progress=common.log,
        )
    found = _summaries(samples)
    server = f"{workers} worker{'s' if workers > 1 else ''}, " + (f"pool {pool}" if pool else "no pool")
    work = f"HTTP single POST, {concurrency} connections, {server}"
    return [Row(work, found["POST /api/v1/events"], found["POST no-op view"], target=0.7)]


# --- command -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.log", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a run of ~1-2 minutes")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per section (default 5)")
    parser.add_argument("--writers", type=int, default=8, help="concurrent writers (default 8)")
    parser.add_argument(
        "--single-calls", type=int, default=500, help="appends per round, 1 writer (default 500)"
    )
    parser.add_argument(
        "--concurrent-calls",
        type=int,
        default=250,
        help="appends per writer per round, N writers (default 250)",
    )
    parser.add_argument("--batches", type=int, default=50, help="batches per round (default 50)")
    parser.add_argument("--batch-size", type=int, default=100, help="events per batch (default 100)")
    parser.add_argument(
        "--read-events", type=int, default=1_000_000, help="events in the global log read (default 1,000,000)"
    )
    parser.add_argument("--read-rounds", type=int, default=3, help="rounds of the global read (default 3)")
    parser.add_argument("--stream-reads", type=int, default=50, help="stream reads per round (default 50)")
    parser.add_argument("--http-requests", type=int, default=2000, help="requests per round (default 2000)")
    parser.add_argument("--http-concurrency", type=int, default=8, help="HTTP connections (default 8)")
    parser.add_argument("--http-workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument(
        "--http-pools",
        default="16",
        help="DB_POOL_MAX_SIZE of the server, one HTTP row each; 0 = none (default 16)",
    )
    parser.add_argument("--markdown", action="store_true", help="print the results as a Markdown table too")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark databases afterwards")
    parser.add_argument(
        "--database",
        default=DATABASE,
        help=f"database to create (and drop); the peer's gets _es (default {DATABASE})",
    )
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
    args.http_pools = [int(size) for size in args.http_pools.split(",") if size.strip()]
    args.sections = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    return args


def _close_notifier() -> None:
    # Appends wake listeners through a per-process notifier thread with its own connection.
    try:
        from events.notify import notifier
    except ImportError:
        return
    notifier.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    databases = [args.database, args.database + "_es"]
    url = common.setup_django(databases[0], AUTH_REQUIRED="false")
    peer_url = common.fresh_database(databases[1])
    facts = common.server_facts(url)
    common.log("machine: " + ", ".join(f"{key} {value}" for key, value in facts.items()))
    ours, peer, raw = Ours(), Peer(peer_url, pool_size=args.writers), Raw(url)
    rows: list[Row] = []
    print("machine: " + ", ".join(f"{key} {value}" for key, value in facts.items()), flush=True)

    def report(section: list[Row]) -> None:
        # Each section is printed when done, so a failure later keeps what was measured.
        rows.extend(section)
        common.print_table(section)

    try:
        if "single" in args.sections:
            report(bench_appends(ours, peer, raw, 1, args.single_calls, args.rounds))
        if "concurrent" in args.sections:
            report(bench_appends(ours, peer, raw, args.writers, args.concurrent_calls, args.rounds))
        if "batch" in args.sections:
            report(bench_batches(ours, peer, raw, args.batches, args.batch_size, args.rounds))
        if "read" in args.sections or "stream" in args.sections:
            stream, originator = load_reads(ours, peer, args.read_events, databases)
            if "read" in args.sections:
                report(bench_reads(ours, peer, raw, args.read_events, args.read_rounds))
            if "stream" in args.sections:
                report(bench_stream(ours, peer, raw, stream, originator, args.stream_reads, args.rounds))
        if "http" in args.sections:
            for pool in args.http_pools:
                report(
                    bench_http(
                        url, args.http_requests, args.http_concurrency, args.http_workers, pool, args.rounds
                    )
                )
    finally:
        peer.close()
        raw.close()
        _close_notifier()
        from django.db import connections

        connections.close_all()
        if not args.keep:
            for name in databases:
                common.drop_database(name)
    print("\nall sections:")
    common.print_table(rows)
    if args.markdown:
        print()
        common.print_table(rows, markdown=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
