"""What validation on append costs: appends of a type with a registered schema against a type without.

    python -m bench.schemas            # 7 rounds; about a minute
    python -m bench.schemas --quick    # 3 rounds, smaller sizes
    python -m bench.schemas --markdown # the table as Markdown too

Both contenders append the same ~150-byte event (``bench.common.PAYLOAD``) through
``events.services.append``; only the type differs: ``bench.validated`` has a registered schema
describing the payload (validation on), ``bench.unvalidated`` has none. Measured, interleaved
round by round, medians over rounds:

- single-event appends (one transaction each) and 100-event batches, validated vs not
  (target: validated >= 0.8x);
- single-event appends with ``SCHEMA_CACHE_SECONDS=0``: the latest-version lookup runs on every
  append instead of once a second, to show what the per-process cache saves.

Then, in isolation: microseconds to validate one event's data with the cached compiled validators
(jsonschema-rs, which answers for valid data, and jsonschema alone, for comparison), and to load the latest version of every subject (the cache refresh) with 11 and with 1000 subjects.
"""

from __future__ import annotations

import argparse
import itertools
import uuid
from collections.abc import Callable

from bench import common
from bench.common import PAYLOAD, Row, Sample

DATABASE = "flunq_bench_schemas"
VALIDATED = "bench.validated"
UNVALIDATED = "bench.unvalidated"

# The payload's shape, as a producer would register it: typed, bounded, open content.
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "A task result",
    "type": "object",
    "properties": {
        "workflowid": {"type": "string", "minLength": 1, "maxLength": 200},
        "taskid": {"type": "string", "minLength": 1, "maxLength": 200},
        "status": {"enum": ["completed", "failed", "retried"]},
        "attempt": {"type": "integer", "minimum": 0},
        "duration_ms": {"type": "integer", "minimum": 0},
        "output": {
            "type": "object",
            "properties": {
                "amount": {"type": "number", "minimum": 0},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "authorised": {"type": "boolean"},
                "ref": {"type": "string"},
            },
            "required": ["amount", "currency"],
        },
    },
    "required": ["workflowid", "taskid", "status"],
}
QUICK = {"rounds": 3, "single_calls": 150, "batches": 10}
FULL = {"rounds": 7, "single_calls": 400, "batches": 30}
_runs = itertools.count()


def _events(type_: str, count: int):
    from events.cloudevents import NewEvent

    run = f"r{next(_runs)}-{uuid.uuid4().hex[:8]}"
    return [
        NewEvent(
            id=f"{run}-{n}",
            source="bench",
            type=type_,
            data=dict(PAYLOAD),
            has_data=True,
            workflowid=f"wf-{run}",
        )
        for n in range(count)
    ]


def singles(type_: str, calls: int, cache_seconds: float | None = None) -> Callable[[], Sample]:
    def run() -> Sample:
        from django.conf import settings

        from events.services import append

        events = _events(type_, calls)
        saved = settings.SCHEMA_CACHE_SECONDS
        if cache_seconds is not None:
            settings.SCHEMA_CACHE_SECONDS = cache_seconds
        try:
            return common.timed_calls(calls, lambda i: len(append([events[i]]).events))
        finally:
            settings.SCHEMA_CACHE_SECONDS = saved

    return run


def batches(type_: str, count: int, size: int = 100) -> Callable[[], Sample]:
    def run() -> Sample:
        from events.services import append

        groups = [_events(type_, size) for _ in range(count)]
        return common.timed_calls(count, lambda i: len(append(groups[i]).events))

    return run


def micro_costs() -> dict[str, float]:
    from schemas import services, validation

    target = validation.latest_targets()[VALIDATED]
    compiled = validation.validator_for(target.schema_id)
    event = _events(VALIDATED, 1)
    costs = {
        "validate one event's data: jsonschema-rs (the fast path)": common.micro_us(
            lambda: compiled.fast.is_valid(PAYLOAD), 2000
        ),
        "validate one event's data: jsonschema alone": common.micro_us(
            lambda: compiled.full.is_valid(PAYLOAD), 500
        ),
        "the whole hook for one event (cache warm)": common.micro_us(
            lambda: validation.validate_events(event, []), 2000
        ),
        "load latest versions, 11 subjects (cache refresh)": common.micro_us(validation._load_latest, 200),
    }
    for n in range(989):
        services.register(f"bench.more.{n}", {"type": "object", "title": str(n)})
    costs["load latest versions, 1000 subjects (cache refresh)"] = common.micro_us(
        validation._load_latest, 50
    )
    return costs


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.schemas", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds, smaller sizes")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown too")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = dict(QUICK if args.quick else FULL)
    if args.rounds:
        sizes["rounds"] = args.rounds
    url = common.setup_django(DATABASE, AUTH_REQUIRED="false")
    facts = common.server_facts(url)
    from django.core.management import call_command

    from schemas import services

    call_command("seed_schemas", verbosity=0)
    services.register(VALIDATED, SCHEMA)
    # Warm both paths (connections, validator compiled) before measuring.
    singles(VALIDATED, 20)()
    singles(UNVALIDATED, 20)()

    rounds, calls, count = sizes["rounds"], sizes["single_calls"], sizes["batches"]
    common.log(f"single appends: {rounds} rounds x {calls} calls per contender")
    single = common.interleave(
        rounds,
        {
            "validated": singles(VALIDATED, calls),
            "unvalidated": singles(UNVALIDATED, calls),
            "validated, no cache": singles(VALIDATED, calls, cache_seconds=0.0),
        },
        progress=common.log,
    )
    common.log(f"100-event batches: {rounds} rounds x {count} batches per contender")
    batch = common.interleave(
        rounds, {"validated": batches(VALIDATED, count), "unvalidated": batches(UNVALIDATED, count)},
        progress=common.log,
    )  # fmt: skip
    rows = [
        Row("single append", common.summarise("validated", single["validated"]),
            common.summarise("no schema", single["unvalidated"]), target=0.8),
        Row("100-event batch", common.summarise("validated", batch["validated"]),
            common.summarise("no schema", batch["unvalidated"]), target=0.8),
        Row("single append", common.summarise("validated, lookup every append", single["validated, no cache"]),
            common.summarise("validated, cached", single["validated"])),
    ]  # fmt: skip
    costs = micro_costs()
    print("facts: " + ", ".join(f"{key} {value}" for key, value in facts.items()))
    common.print_table(rows)
    for what, micro in costs.items():
        print(f"{what}: {micro:.1f} us")
    if args.markdown:
        print()
        common.print_table(rows, markdown=True)
        print()
        print("| cost | µs |\n| --- | --- |")
        for what, micro in costs.items():
            print(f"| {what} | {micro:.1f} |")
    common.drop_database(DATABASE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
