"""What every benchmark shares: a fresh database, the event, timing, interleaved rounds, printing.

    from bench import common

    url = common.setup_django("flunq_bench_mine")        # fresh database, migrated, Django ready
    samples = common.interleave(5, {"ours": run_ours, "peer": run_peer})   # A, B, A, B, ...
    common.print_table([common.Row("append", common.summarise("ours", samples["ours"]),
                                   common.summarise("peer", samples["peer"]), target=1.5)])

A contender is a function that does one round of work and returns a ``Sample``: how many events
it handled, the wall time, and the latency of each call. ``run_concurrent`` runs a call in N
threads started together (Django connections are per thread, so each thread has its own).
"""

from __future__ import annotations

import math
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"

# The data of every event in every benchmark: ~150 bytes of JSON, the shape of a task result.
PAYLOAD: dict[str, Any] = {
    "workflowid": "wf-7f3c2a9e",
    "taskid": "charge-card",
    "status": "completed",
    "attempt": 1,
    "duration_ms": 1834,
    "output": {"amount": 129.95, "currency": "EUR", "authorised": True, "ref": "ch_3PqXyZ"},
}
PAYLOAD_JSON: bytes = orjson.dumps(PAYLOAD)


# --- databases -----------------------------------------------------------------------------------


def database_url(name: str) -> str:
    """``DATABASE_URL``'s server (or 127.0.0.1:5432 as postgres) with the database ``name``."""
    parts = urlsplit(os.environ.get("DATABASE_URL") or DEFAULT_SERVER)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def fresh_database(name: str) -> str:
    """Drop and create the database ``name`` on the benchmark server; returns its URL."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(name)


def drop_database(name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def setup_django(name: str = "flunq_bench", **environ: str) -> str:
    """A fresh database ``name``, Django set up on it and migrated; returns its URL.

    ``environ`` sets further variables before the settings are read (e.g. ``AUTH_REQUIRED``).
    Call once per process, before importing anything that touches Django models.
    """
    url = fresh_database(name)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flunq_events.settings")
    os.environ.update(environ)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    return url


def server_facts(url: str) -> dict[str, str]:
    """Machine and PostgreSQL facts to print next to the figures."""
    import psycopg

    with psycopg.connect(url) as conn:
        facts = {
            "cores": str(os.cpu_count()),
            "postgres": conn.execute("SHOW server_version").fetchone()[0],
        }
        for setting in ("fsync", "synchronous_commit", "shared_buffers"):
            facts[setting] = conn.execute(f"SHOW {setting}").fetchone()[0]
    with suppress(OSError):
        facts["load"] = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return facts


# --- measuring -----------------------------------------------------------------------------------


@dataclass
class Sample:
    """One round of one contender: events handled, wall seconds, seconds per call."""

    events: int
    seconds: float
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (0-100) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]


def timed_calls(calls: int, call: Callable[[int], int]) -> Sample:
    """Run ``call(i)`` for i in range(calls) in this thread; each returns the events it handled."""
    latencies: list[float] = []
    events = 0
    clock = time.perf_counter
    start = clock()
    for index in range(calls):
        began = clock()
        events += call(index)
        latencies.append(clock() - began)
    return Sample(events, clock() - start, latencies)


def run_concurrent(
    threads: int,
    calls: int,
    call: Callable[[int, int], int],
    *,
    before: Callable[[int], None] | None = None,
    after: Callable[[int], None] | None = None,
) -> Sample:
    """Run ``call(thread, i)`` ``calls`` times in each of ``threads`` threads, started together.

    ``before(thread)`` runs in the thread before the start (open connections there, untimed);
    ``after(thread)`` runs after the timed part (close them). The wall time runs from the common
    start until the last thread is done.
    """
    barrier = threading.Barrier(threads + 1)
    results: list[Sample | None] = [None] * threads
    errors: list[BaseException] = []

    def worker(number: int) -> None:
        try:
            if before is not None:
                before(number)
        except BaseException as exc:
            errors.append(exc)
        barrier.wait()
        try:
            if not errors:
                results[number] = timed_calls(calls, lambda index: call(number, index))
        except BaseException as exc:
            errors.append(exc)
        finally:
            if after is not None:
                after(number)

    workers = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(threads)]
    for thread in workers:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in workers:
        thread.join()
    seconds = time.perf_counter() - start
    if errors:
        raise errors[0]
    done = [sample for sample in results if sample is not None]
    return Sample(
        events=sum(sample.events for sample in done),
        seconds=seconds,
        latencies=[latency for sample in done for latency in sample.latencies],
    )


def interleave(
    rounds: int, contenders: dict[str, Callable[[], Sample]], *, progress: Callable[[str], None] | None = None
) -> dict[str, list[Sample]]:
    """Run the contenders in turn (A, B, A, B, ...) for ``rounds`` rounds; samples per contender."""
    samples: dict[str, list[Sample]] = {name: [] for name in contenders}
    for number in range(rounds):
        for name, run in contenders.items():
            sample = run()
            samples[name].append(sample)
            if progress is not None:
                progress(f"round {number + 1}/{rounds} {name}: {sample.rate:,.0f} ev/s")
    return samples


@dataclass
class Summary:
    """A contender over all rounds: median rate, latency percentiles over every call."""

    name: str
    rate: float
    p50: float | None
    p99: float | None
    rounds: int

    def cells(self) -> list[str]:
        return [self.name, f"{self.rate:,.0f}", _ms(self.p50), _ms(self.p99)]


def summarise(name: str, samples: list[Sample], *, latencies: bool = True) -> Summary:
    every = [latency for sample in samples for latency in sample.latencies]
    return Summary(
        name=name,
        rate=statistics.median(sample.rate for sample in samples),
        p50=percentile(every, 50) if latencies and every else None,
        p99=percentile(every, 99) if latencies and every else None,
        rounds=len(samples),
    )


def _ms(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1000:.2f}"


# --- CPU (Linux: /proc) -------------------------------------------------------------------------


def cpu_times(pids: list[int]) -> tuple[float, float]:
    """User and system CPU time the processes have used so far."""
    user = system = 0
    for pid in pids:
        with suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            user, system = user + int(fields[11]), system + int(fields[12])
    return user / os.sysconf("SC_CLK_TCK"), system / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far."""
    return sum(cpu_times(pids))


# --- HTTP ----------------------------------------------------------------------------------------


@contextmanager
def serve_asgi(environ: dict[str, str], *, workers: int = 1, extra_args: Sequence[str] = ()) -> Iterator[str]:
    """The service under uvicorn in a subprocess, as ``make run`` serves it; yields its base URL.

    ``environ`` is added to this process's environment (``DATABASE_URL``, ``AUTH_REQUIRED``, ...).
    """
    import subprocess
    import sys
    import urllib.request
    from pathlib import Path

    from flunq_events.devservers import free_port

    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "flunq_events.asgi:application", "--host", "127.0.0.1",
               "--port", str(port), "--no-access-log", "--log-level", "warning", *extra_args]  # fmt: skip
    if workers > 1:
        command += ["--workers", str(workers)]
    env = {**os.environ, "LOG_LEVEL": "WARNING", **environ}
    process = subprocess.Popen(command, env=env, cwd=Path(__file__).resolve().parent.parent)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {process.returncode} before answering")
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def http_load(
    base: str, requests: int, concurrency: int, make_request: Callable[[int, int], bytes]
) -> Sample:
    """Send ``requests`` HTTP/1.1 requests over ``concurrency`` keep-alive connections.

    ``make_request(connection, i)`` returns the raw request bytes (see ``post_request``). A small
    asyncio loop rather than an HTTP client library, so the load generator, which shares the
    machine's cores with the server, spends as little CPU as it can. Any non-2xx answer fails.
    """
    import asyncio

    parts = urlsplit(base)
    per_connection = [requests // concurrency + (1 if n < requests % concurrency else 0)
                      for n in range(concurrency)]  # fmt: skip

    async def connection(number: int, latencies: list[float]) -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        clock = time.perf_counter
        try:
            for index in range(per_connection[number]):
                began = clock()
                writer.write(make_request(number, index))
                head = await reader.readuntil(b"\r\n\r\n")
                status = head[9:12]
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length)
                latencies.append(clock() - began)
                if not status.startswith(b"2"):
                    raise RuntimeError(f"HTTP {status.decode()}: {body[:300].decode(errors='replace')}")
        finally:
            writer.close()

    async def run() -> Sample:
        latencies: list[float] = []
        start = time.perf_counter()
        await asyncio.gather(*(connection(n, latencies) for n in range(concurrency)))
        return Sample(requests, time.perf_counter() - start, latencies)

    return asyncio.run(run())


def post_request(base: str, path: str, body: bytes, content_type: str = "application/json") -> bytes:
    """The raw bytes of one keep-alive ``POST`` of ``body`` to ``path``."""
    host = urlsplit(base).netloc
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


# --- printing ------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the report: our figure against a peer or ceiling, with an optional target."""

    work: str
    ours: Summary
    other: Summary | None = None
    target: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.other is None or self.other.rate == 0:
            return None
        return self.ours.rate / self.other.rate

    def verdict(self) -> str:
        if self.target is None or self.ratio is None:
            return ""
        return "met" if self.ratio >= self.target else "MISSED"


HEADER = ["work", "ours", "ev/s", "p50 ms", "p99 ms", "vs", "ev/s", "p50 ms", "p99 ms", "ratio", "target", ""]


def _cells(row: Row) -> list[str]:
    other = row.other.cells() if row.other else ["", "", "", ""]
    ratio = f"{row.ratio:.2f}x" if row.ratio is not None else ""
    target = f">= {row.target:g}x" if row.target is not None else ""
    return [row.work, *row.ours.cells(), *other, ratio, target, row.verdict()]


def format_table(rows: list[Row]) -> str:
    """A fixed-width table for the terminal."""
    table = [HEADER, *(_cells(row) for row in rows)]
    widths = [max(len(line[column]) for line in table) for column in range(len(HEADER))]
    numeric = {2, 3, 4, 6, 7, 8, 9}
    lines = []
    for line in table:
        cells = [
            cell.rjust(width) if column in numeric else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def format_markdown(rows: list[Row]) -> str:
    """The same table as Markdown, for docs/benchmarks.md."""
    lines = ["| " + " | ".join(HEADER[:-1]) + " |", "|" + " --- |" * (len(HEADER) - 1)]
    for row in rows:
        cells = _cells(row)
        if cells[-1]:
            cells[-2] = f"{cells[-2]} ({cells[-1]})"
        lines.append("| " + " | ".join(cells[:-1]) + " |")
    return "\n".join(lines)


def add_table_options(parser, *, rounds: int = 5) -> None:
    """``--rounds``, ``--markdown`` and ``--keep``, as every single-table benchmark takes them."""
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")


def print_table(rows: list[Row], *, markdown: bool = False) -> None:
    print(format_markdown(rows) if markdown else format_table(rows), flush=True)


def log(message: str) -> None:
    """Progress on stderr, so stdout holds only the results."""
    import sys

    print(f"[bench] {message}", file=sys.stderr, flush=True)


def micro_us(call: Callable[[], object], repeat: int) -> float:
    """Median microseconds per call over 5 runs of ``repeat`` calls."""
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            call()
        runs.append((time.perf_counter() - start) / repeat * 1e6)
    return statistics.median(runs)
