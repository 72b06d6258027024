"""Schemathesis against the live OpenAPI schema of a real server: no 5xx, documented statuses,
responses matching their schemas.

Every operation of the schema is fuzzed; ``FUZZ_ALL_OPERATIONS=0`` limits the run to the log's
own endpoints (``OPERATIONS``) for a quicker look.
Examples per operation are bounded (``FUZZ_MAX_EXAMPLES``, default 20) so the run stays short.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
import schemathesis
from django.db import connection
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from prometheus_client.parser import text_string_to_metric_families
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from flunq_events.devservers import free_port
from tests.conftest import LiveServer, database_url_of_test_db

OPERATIONS = r"^/api/v1/(events|streams)(/\{[a-z_]+\})?(/events)?$"
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "20"))
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzzed_server(django_db_setup, django_db_blocker):
    """One real server on the test database for the module (each test empties the database after it)."""
    with django_db_blocker.unblock():
        connection.close()
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_test_db(),
        "AUTH_REQUIRED": "false",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    server = LiveServer(free_port(), env)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api_schema(fuzzed_server):
    schema = schemathesis.openapi.from_url(f"{fuzzed_server.url}/api/schema/?format=json")
    if os.environ.get("FUZZ_ALL_OPERATIONS", "1") == "0":
        schema = schema.include(path_regex=OPERATIONS)
    return schema


def fuzz(operation, mode: GenerationMode, base_url: str) -> str | None:
    """Run one operation's examples; the failure report, or None."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    def run(case):
        case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=30)

    try:
        run()
    except Unsatisfiable as exc:
        # Invalid inputs cannot be made for an operation whose only input is a free-form path
        # segment (GET /api/v1/streams/{stream}): nothing to test in that mode.
        return None if mode is GenerationMode.NEGATIVE else f"Unsatisfiable: {exc}"
    except (Exception, BaseExceptionGroup) as exc:  # failed checks, with the reproducing request
        return f"{type(exc).__name__}: {exc}"[:3000]
    return None


# schemathesis' own pytest integration (schema.parametrize) does not run on pytest 9, so the
# operations are driven through their Hypothesis strategies; each failure names its operation.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_api_conforms_to_its_schema(api_schema, fuzzed_server, mode):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 9, [operation.label for operation in operations]
    failures = {operation.label: fuzz(operation, mode, fuzzed_server.url) for operation in operations}
    # the server's own request counter proves the examples reached it
    scraped = httpx.get(f"{fuzzed_server.url}/metrics").text
    answered = sum(
        sample.value
        for family in text_string_to_metric_families(scraped)
        if family.name == "flunq_http_requests"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels["route"] != "schema"
    )
    assert answered >= 5 * len(operations)
    failed = {label: failure for label, failure in failures.items() if failure}
    errors = [
        line for line in Path(fuzzed_server.log.name).read_text().splitlines() if '"level":"ERROR"' in line
    ]
    report = "\n\n".join(f"== {label}\n{failure}" for label, failure in failed.items())
    assert failed == {}, report + "\n\n== server errors\n" + "\n".join(errors[-5:])[-5000:]
