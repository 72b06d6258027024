"""The safe horizon's cost per call: normally, and with appends past a held transaction.

    python -m bench.horizon                  # 100,000 events, 10,000 past a held transaction
    python -m bench.horizon --events 20000 --past 1000 --rounds 3

``flunq_horizon()`` reads the newest rows first and, when none of them is below the snapshot's
``xmin``, searches the positions in halves (docs/log.md). Every global reader calls it once per
page. Each contender runs one statement ``--calls`` times on one connection (prepared,
autocommit); the figures are calls per second (the table's ev/s column), medians over
interleaved rounds, set against ``SELECT max(position)``: the cheapest read of the log's head,
one lookup in the same index, measured in the same rounds.

- ``nothing held``: no transaction holds ``xmin`` back;
- ``held back``: a transaction holding an xid stays open while ``--past`` events commit after it.

Each row also checks the horizon it read against its definition (the highest position below
``xmin``, found by a scan in the same snapshot).
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Callable

from bench import common

DATABASE = "flunq_bench_horizon"
HORIZON = "SELECT flunq_horizon()"
HEAD = 'SELECT max("position") FROM flunq_events'
DEFINITION = (
    "SELECT flunq_horizon(), coalesce((SELECT max(position) FROM flunq_events "
    "WHERE xid < pg_snapshot_xmin(pg_current_snapshot())), 0)"
)


def horizon_rows(connect: Callable, append_events: Callable[[int], None], *, past: int, calls: int,
                 rounds: int) -> list[common.Row]:  # fmt: skip
    """The two rows: ``connect()`` gives an autocommit psycopg connection to the log's database,
    ``append_events(n)`` commits ``n`` new events."""
    reader = connect()

    def contender(sql: str) -> Callable[[], common.Sample]:
        def run() -> common.Sample:
            return common.timed_calls(calls, lambda _: (reader.execute(sql, prepare=True).fetchone(), 1)[1])

        return run

    def row(work: str) -> common.Row:
        found, meant = reader.execute(DEFINITION).fetchone()
        if found != meant:
            raise SystemExit(f"{work}: flunq_horizon() read {found}, its definition {meant}")
        samples = common.interleave(
            rounds,
            {"flunq_horizon()": contender(HORIZON), "max(position)": contender(HEAD)},
            progress=common.log,
        )
        return common.Row(
            work,
            common.summarise("flunq_horizon()", samples["flunq_horizon()"]),
            common.summarise("max(position)", samples["max(position)"]),
        )

    rows = [row("horizon, nothing held")]
    held = connect()
    held.autocommit = False
    held.execute("SELECT pg_current_xact_id()")  # an xid, held until the rollback
    try:
        append_events(past)
        rows.append(row(f"horizon, {past:,} events past a held transaction"))
    finally:
        held.rollback()
        held.close()
        reader.close()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events in the log first")
    parser.add_argument("--past", type=int, default=10_000, help="events committed past the held transaction")
    parser.add_argument("--calls", type=int, default=2000, help="calls per contender per round")
    common.add_table_options(parser)
    args = parser.parse_args(argv)

    url = common.setup_django(DATABASE)
    from django.db import connections

    from bench.log import _event
    from events import services
    from events.cloudevents import from_structured
    from flunq_events import db

    def append_events(count: int) -> None:
        run = uuid.uuid4().hex[:8]
        for start in range(0, count, 1000):
            size = min(1000, count - start)
            services.append(
                [from_structured(_event(f"{run}-{start + n}", f"{run}-{start}")) for n in range(size)]
            )

    common.log(f"filling the log with {args.events:,} events")
    append_events(args.events)
    rows = horizon_rows(db.connect, append_events, past=args.past, calls=args.calls, rounds=args.rounds)
    facts = ", ".join(f"{key} {value}" for key, value in common.server_facts(url).items())
    print(
        f"{args.events:,} events, {args.calls} calls per contender per round, {args.rounds} rounds; {facts}"
    )
    common.print_table(rows, markdown=args.markdown)
    connections.close_all()
    if not args.keep:
        common.drop_database(DATABASE)


if __name__ == "__main__":
    main()
