"""Batch appends with ``flunq_append_new``'s statements planned once (as shipped) or on every call.

    python -m bench.plans                       # batches of 2, 4, 10 and 100 events, 5 rounds
    python -m bench.plans --sizes 2,100 --rounds 9

PL/pgSQL gives a statement that uses the function's variables a plan for each call's values
("custom plans") for as long as it judges that cheaper than one generic plan; ``flunq_append``
and ``flunq_append_new`` (the one a batch outside a transaction takes, measured here) carry ``SET
plan_cache_mode = force_generic_plan`` so that their statements are planned once per session
(docs/benchmarks.md, findings 15 and 21). Contenders, interleaved round by round, each round in
a new session:

- ``generic plans``: the function as shipped;
- ``custom plans``: the same function with that setting reset (PostgreSQL's default).

Batches of up to 4 events span 2 streams, larger ones one stream; every call goes through
``events.services.append``, as REST and gRPC call it. Figures are medians over rounds.
"""

from __future__ import annotations

import argparse
import uuid

from bench import common

DATABASE = "flunq_bench_plans"
SETTING = "ALTER FUNCTION flunq_append_new {}"  # its one signature


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2,4,10,100", help="comma-separated batch sizes")
    parser.add_argument("--events", type=int, default=3000, help="events per contender per round")
    common.add_table_options(parser)
    args = parser.parse_args(argv)

    common.setup_django(DATABASE)
    from django.db import connection

    from bench.log import _event
    from events import services
    from events.cloudevents import from_structured

    def batches(size: int, setting: str) -> common.Sample:
        with connection.cursor() as cursor:
            cursor.execute(SETTING.format(setting))
        connection.close()  # a new session: PL/pgSQL caches plans per session
        run = uuid.uuid4().hex[:8]
        spread = 2 if size <= 4 else 1

        def call(index: int) -> int:
            events = [
                from_structured(_event(f"{run}-{index}-{n}", f"{run}-{n % spread}")) for n in range(size)
            ]
            services.append(events)
            return size

        return common.timed_calls(max(args.events // size, 20), call)

    rows = []
    for size in (int(value) for value in args.sizes.split(",")):
        samples = common.interleave(
            args.rounds,
            {
                "generic plans": lambda size=size: batches(size, "SET plan_cache_mode = force_generic_plan"),
                "custom plans": lambda size=size: batches(size, "RESET plan_cache_mode"),
            },
            progress=common.log,
        )
        rows.append(
            common.Row(
                f"{size}-event batch append",
                common.summarise("generic plans", samples["generic plans"]),
                common.summarise("custom plans", samples["custom plans"]),
            )
        )
    with connection.cursor() as cursor:
        cursor.execute(SETTING.format("SET plan_cache_mode = force_generic_plan"))
    connection.close()
    common.print_table(rows, markdown=args.markdown)
    if not args.keep:
        common.drop_database(DATABASE)


if __name__ == "__main__":
    main()
