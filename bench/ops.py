"""What tenant isolation and observability cost on the request path.

    python -m bench.ops            # 7 rounds
    python -m bench.ops --quick    # 3 rounds, fewer calls
    python -m bench.ops --markdown # the tables as Markdown too

Interleaved round by round, medians over rounds, in process through the REST stack (DRF test
client, the full middleware list, the same PostgreSQL): single-event appends with a token bound to
a tenant (``tenantid`` stamped; the stream's tenant and the (source, id) checked inside the append
function) against a token without one (target: >= 0.8x). Then, in isolation, microseconds per
call of the request middleware (id, metrics, one JSON log line), of the append metrics decorator,
and milliseconds per ``/metrics`` scrape.
"""

from __future__ import annotations

import argparse
import io
import itertools
import logging
import uuid
from collections.abc import Callable

import orjson

from bench import common
from bench.common import PAYLOAD, Row, Sample

DATABASE = "flunq_bench_ops"
QUICK = {"rounds": 3, "calls": 150}
FULL = {"rounds": 7, "calls": 400}
_runs = itertools.count()


def _body(run: str, n: int) -> bytes:
    event = {"specversion": "1.0", "id": f"{run}-{n}", "source": f"/bench/{run}", "type": "bench.ops",
             "workflowid": f"wf-{run}", "data": PAYLOAD}  # fmt: skip
    return orjson.dumps(event)


def appends(client, calls: int) -> Callable[[], Sample]:
    def run() -> Sample:
        run_id = f"r{next(_runs)}-{uuid.uuid4().hex[:8]}"
        bodies = [_body(run_id, n) for n in range(calls)]

        def call(index: int) -> int:
            response = client.post("/api/v1/events", bodies[index], content_type="application/json")
            assert response.status_code == 201, response.content
            return 1

        return common.timed_calls(calls, call)

    return run


def micro_costs() -> dict[str, float]:
    from django.http import HttpResponse
    from django.test import Client, RequestFactory

    from events.services import AppendResult
    from flunq_events import metrics
    from flunq_events.middleware import request_observation

    factory = RequestFactory()
    observed = request_observation(lambda request: HttpResponse(b"{}"))
    http_log = logging.getLogger("flunq.http")
    handler = logging.StreamHandler(io.StringIO())
    from flunq_events.logs import JSONFormatter

    handler.setFormatter(JSONFormatter())
    saved = http_log.handlers[:], http_log.propagate, http_log.level
    http_log.handlers, http_log.propagate, http_log.level = [handler], False, logging.INFO
    try:
        with_log = common.micro_us(lambda: observed(factory.get("/api/v1/events")), 2000)
        http_log.setLevel(logging.WARNING)
        without_log = common.micro_us(lambda: observed(factory.get("/api/v1/events")), 2000)
        bare = common.micro_us(lambda: factory.get("/api/v1/events"), 2000)
    finally:
        http_log.handlers, http_log.propagate, http_log.level = saved
    noop = metrics.observe_append(lambda events: AppendResult(events=[]))
    client = Client()
    return {
        "request middleware, one JSON log line at INFO (request building subtracted)": with_log - bare,
        "request middleware, LOG_LEVEL=WARNING (request building subtracted)": without_log - bare,
        "append metrics decorator around a no-op": common.micro_us(lambda: noop([]), 20000),
        "GET /metrics, whole scrape (ms)": common.micro_us(lambda: client.get("/metrics"), 50) / 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ops", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    url = common.setup_django(DATABASE, LOG_LEVEL="WARNING", RATE_LIMIT="", ALLOWED_HOSTS="testserver")
    from rest_framework.test import APIClient

    from access.models import ApiToken

    clients = {}
    for name, tenant in (("no tenant", None), ("tenant-bound", "acme")):
        _, token = ApiToken.issue(
            f"bench-{name}-{uuid.uuid4().hex[:6]}", ["events:read", "events:write"], tenant
        )
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        clients[name] = client
    print("facts:", common.server_facts(url))
    samples = common.interleave(
        sizes["rounds"],
        {name: appends(client, sizes["calls"]) for name, client in clients.items()},
        progress=common.log,
    )
    rows = [
        Row(
            "single append over REST (in process)",
            common.summarise("tenant-bound", samples["tenant-bound"]),
            common.summarise("no tenant", samples["no tenant"]),
            target=0.8,
        )
    ]
    common.print_table(rows, markdown=args.markdown)
    costs = micro_costs()
    print("\n| cost (same run) | µs |\n| --- | --- |")
    for name, value in costs.items():
        print(f"| {name} | {value:.1f} |")
    common.drop_database(DATABASE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
