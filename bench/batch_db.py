"""The database's part of a 100-event batch append, in the forms the service has sent it.

    python -m bench.batch_db                    # 7 rounds of 40 batches per form
    python -m bench.batch_db --rounds 9 --markdown

``bench.log`` times a whole batch: the process's part (``from_structured``, the
parameters) and the database's. This times only the database's, one statement per batch on a
plain psycopg connection, the parameters built beforehand by the service's own code:

- ``arrays``: ``flunq_append_new``, each attribute one array in binary, as a batch outside a
  transaction is sent (``events.services.new_batch_params``);
- ``JSON``: ``flunq_append(..., p_probe => false)``, the batch as one JSON text, the form before
  (docs/benchmarks.md, finding 21); still in the schema for a rolling deploy;
- ``COPY``: the same rows into ``bench.log``'s raw table (our columns and indexes), psycopg's
  ``COPY ... FROM STDIN``, as ``bench.log`` does it: what PostgreSQL alone costs.

The forms run interleaved round by round (one round: ``--batches`` batches of 100 events, each
its own stream), each on its own connection. Per form: the median rate over rounds, p50/p99 per
statement, and the server's CPU per batch: the backend's user and system time from
``/proc/<pid>/stat`` (Linux; clock ticks of 10 ms, so read over whole rounds).
"""

from __future__ import annotations

import argparse
import statistics
import uuid
from pathlib import Path

from bench import common

DATABASE = "flunq_bench_batch_db"
SIZE = 100


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40, help="batches per form per round (default 40)")
    common.add_table_options(parser, rounds=7)
    args = parser.parse_args(argv)

    url = common.setup_django(DATABASE)
    import orjson
    import psycopg
    from psycopg import pq

    from bench.log import RAW_COLUMNS, RAW_TABLE, Raw, _event
    from events import services
    from events.cloudevents import derive_stream, from_structured

    Raw(url)  # creates the raw table
    cpu: dict[str, list[float]] = {"arrays": [], "JSON": [], "COPY": []}

    def batch(run: str, index: int) -> tuple[list, list[str]]:
        events = [from_structured(_event(f"{run}-{index}-{n}", f"{run}-{index}")) for n in range(SIZE)]
        return events, [derive_stream(event) for event in events]

    def statement(name: str, sql: bytes, params_of, formats=None):
        conn = psycopg.connect(url, autocommit=True)
        conn.pgconn.prepare(name.encode(), sql)
        pid = conn.info.backend_pid

        def round_() -> common.Sample:
            run = uuid.uuid4().hex[:8]
            params = [params_of(*batch(run, index)) for index in range(args.batches)]
            before = common.cpu_seconds([pid])

            def call(index: int) -> int:
                result = conn.pgconn.exec_prepared(name.encode(), params[index], param_formats=formats)
                if result.status != pq.ExecStatus.TUPLES_OK:
                    raise SystemExit(result.error_message.decode())
                return SIZE

            sample = common.timed_calls(args.batches, call)
            cpu[name].append((common.cpu_seconds([pid]) - before) / args.batches)
            return sample

        return round_

    def arrays_params(events, streams):
        params = services.new_batch_params(events, streams, "any", None)[0]
        return [value.encode() if isinstance(value, str) else value for value in params]

    def json_params(events, streams):
        rows = [event.row(name) for event, name in zip(events, streams, strict=True)]
        return [orjson.dumps(rows), b"any", None]

    copy_conn = psycopg.connect(url, autocommit=True)
    copy_pid = copy_conn.info.backend_pid

    def copy_round() -> common.Sample:
        run = uuid.uuid4().hex[:8]
        rows = []
        for index in range(args.batches):
            events, streams = batch(run, index)
            rows.append([
                (name, version, event.id, event.source, event.specversion, event.type, event.executionid,
                 orjson.dumps(event.data).decode())
                for version, (event, name) in enumerate(zip(events, streams, strict=True))
            ])  # fmt: skip
        before = common.cpu_seconds([copy_pid])

        def call(index: int) -> int:
            with (
                copy_conn.cursor() as cursor,
                cursor.copy(f"COPY {RAW_TABLE} ({RAW_COLUMNS}) FROM STDIN") as copy,
            ):
                for row in rows[index]:
                    copy.write_row(row)
            return SIZE

        sample = common.timed_calls(args.batches, call)
        cpu["COPY"].append((common.cpu_seconds([copy_pid]) - before) / args.batches)
        return sample

    contenders = {
        "arrays": statement(
            "arrays", services.APPEND_NEW.sql, arrays_params, services.APPEND_NEW.param_formats
        ),
        "JSON": statement("JSON", b"SELECT * FROM flunq_append($1::json, $2, $3, false)", json_params),
        "COPY": copy_round,
    }
    samples = common.interleave(args.rounds, contenders, progress=common.log)
    summaries = {name: common.summarise(name, found) for name, found in samples.items()}
    common.print_table(
        [
            common.Row(f"{SIZE}-event batch, the database's part", summaries["arrays"], summaries[other])
            for other in ("JSON", "COPY")
        ],
        markdown=args.markdown,
    )
    if Path("/proc/self/stat").exists():
        print(
            "server CPU per batch (ms, median over rounds): "
            + ", ".join(f"{name} {statistics.median(values) * 1000:.2f}" for name, values in cpu.items())
        )
    if not args.keep:
        common.drop_database(DATABASE)


if __name__ == "__main__":
    main()
