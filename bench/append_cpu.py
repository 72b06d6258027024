"""Where a single-event append spends its CPU: the benchmark process against the rest of the machine.

    python -m bench.append_cpu                  # 8 writer threads, 400 appends each, 9 rounds
    python -m bench.append_cpu --threads 1 --rounds 5

On a machine whose cores the benchmark saturates, the append rate is the CPU an append costs, on
both sides of the connection. Contenders, interleaved round by round, medians over rounds:

- ``append``: ``events.services.append([event])``, as shipped (``flunq_append_one`` through
  ``flunq_events.db.Statement``, i.e. libpq itself);
- ``append, psycopg cursor``: the same call with the statement sent through a psycopg cursor
  (``flunq_events.db.rows``), as before finding 14 of docs/benchmarks.md;
- ``psycopg INSERT``: one row per transaction into a table with our columns and indexes.

Per append: process CPU (user + system of this process, all threads), the rest of the machine's
busy time (mostly PostgreSQL and the kernel on its behalf; anything else running counts too),
and context switches on the whole machine. Linux only (``/proc/stat``).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from bench import common

DATABASE = "flunq_bench_cpu"


@dataclass
class Cost:
    rate: float
    process_us: float
    elsewhere_us: float
    switches: float


def _machine() -> tuple[int, int]:
    """Busy clock ticks of all cores, and context switches, since boot."""
    with open("/proc/stat") as stat:
        lines = stat.read().splitlines()
    ticks = [int(value) for value in lines[0].split()[1:]]
    busy = sum(ticks) - ticks[3] - ticks[4]  # less idle and iowait
    switches = next(int(line.split()[1]) for line in lines if line.startswith("ctxt "))
    return busy, switches


def measure(run: Callable[[], common.Sample]) -> Cost:
    before, (busy_before, switches_before) = os.times(), _machine()
    sample = run()
    after, (busy_after, switches_after) = os.times(), _machine()
    process = (after.user + after.system) - (before.user + before.system)
    machine = (busy_after - busy_before) / os.sysconf("SC_CLK_TCK")
    per = 1e6 / sample.events
    return Cost(
        sample.rate,
        process * per,
        (machine - process) * per,
        (switches_after - switches_before) / sample.events,
    )


class CursorPath:
    """The single-event statement through a psycopg cursor, as ``append`` sent it before."""

    def rows(self, params, wrapper=None):
        from events.services import APPEND_ONE_SQL
        from flunq_events import db

        sql = re.sub(r"\$\d+", "%s", APPEND_ONE_SQL)
        return db.rows(sql, params)  # on this thread's connection, as ``wrapper`` is


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--calls", type=int, default=400, help="appends per thread per round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args(argv)

    url = common.setup_django(DATABASE)
    from bench.log import Ours, Raw
    from events import services

    ours, raw = Ours(), Raw(url)
    shipped = services._APPEND_ONE

    def through_cursor() -> common.Sample:
        services._APPEND_ONE = CursorPath()
        try:
            return ours.appends(args.threads, args.calls)
        finally:
            services._APPEND_ONE = shipped

    contenders = {
        "append": lambda: ours.appends(args.threads, args.calls),
        "append, psycopg cursor": through_cursor,
        "psycopg INSERT": lambda: raw.inserts(args.threads, args.calls),
    }
    costs: dict[str, list[Cost]] = {name: [] for name in contenders}
    for number in range(args.rounds):
        for name, run in contenders.items():
            costs[name].append(measure(run))
        common.log(f"round {number + 1}/{args.rounds} done")
    raw.close()

    facts = ", ".join(f"{key} {value}" for key, value in common.server_facts(url).items())
    print(f"{args.threads} writer threads, {args.calls} appends each, {args.rounds} rounds; {facts}")
    print(
        f"{'contender':24} {'ev/s':>7} {'process us':>11} {'elsewhere us':>13} {'total us':>9} {'switches':>9}"
    )
    for name, found in costs.items():
        rate, process, elsewhere, switches = (
            statistics.median(getattr(cost, field) for cost in found)
            for field in ("rate", "process_us", "elsewhere_us", "switches")
        )
        print(
            f"{name:24} {rate:7,.0f} {process:11.0f} {elsewhere:13.0f} {process + elsewhere:9.0f} {switches:9.1f}"
        )

    from django.db import connections

    connections.close_all()
    if not args.keep:
        common.drop_database(DATABASE)


if __name__ == "__main__":
    main()
