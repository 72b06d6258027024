"""Schemathesis against the live OpenAPI schema of a real server: no 5xx, documented statuses,
responses matching their schemas.

``OPERATIONS`` limits the run to the log's own endpoints; set ``FUZZ_ALL_OPERATIONS=1`` to fuzz
every operation of the schema (or widen the pattern once an area's endpoints are stable).
Examples per operation are bounded (``FUZZ_MAX_EXAMPLES``, default 25) so the run stays short.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core.management import call_command
from django.db import connection
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from flunq_events.devservers import free_port
from tests.conftest import LiveServer, database_url_of_test_db

OPERATIONS = r"^/api/v1/(events|streams)(/\{[a-z_]+\})?(/events)?$"
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzzed_server(django_db_setup, django_db_blocker):
    """One real server on the test database for the module; the database is emptied afterwards."""
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
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)


@pytest.fixture(scope="module")
def api_schema(fuzzed_server):
    schema = schemathesis.openapi.from_url(f"{fuzzed_server.url}/api/schema/?format=json")
    if not os.environ.get("FUZZ_ALL_OPERATIONS"):
        schema = schema.include(path_regex=OPERATIONS)
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms_to_its_schema(case, fuzzed_server):
    case.call_and_validate(base_url=fuzzed_server.url, checks=CHECKS, timeout=30)
