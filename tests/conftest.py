"""Fixtures shared by the suite: API clients with tokens, real brokers, a real ASGI server."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from access import tokens
from access.models import ApiToken
from tests.environment import reachable

ROOT = Path(__file__).resolve().parent.parent
_servers: dict[str, object] = {}


@pytest.fixture(autouse=True)
def _fresh_token_cache():
    tokens.clear_cache()
    yield
    tokens.clear_cache()


@pytest.fixture
def make_token(db) -> Callable[..., str]:
    """``make_token(scopes=[...], tenant=None)`` -> a bearer token stored in the test database."""
    counter = iter(range(1_000_000))

    def make(scopes=("events:read", "events:write"), tenant: str | None = None) -> str:
        _, token = ApiToken.issue(f"test-{next(counter)}", list(scopes), tenant)
        return token

    return make


@pytest.fixture
def api(make_token) -> APIClient:
    """An in-process API client authenticated with a read+write token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token()}")
    return client


@pytest.fixture
def admin_api(make_token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(['admin'])}")
    return client


def _start(name: str, factory: Callable[[], object]) -> object:
    if name not in _servers:
        server = factory()
        server.start()
        _servers[name] = server
    return _servers[name]


@pytest.fixture(scope="session")
def redis_url() -> str:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    if reachable("127.0.0.1", 6379):
        return "redis://127.0.0.1:6379/0"
    from flunq_events.devservers import RedisServer

    return _start("redis", RedisServer).url


@pytest.fixture(scope="session")
def nats_url() -> str:
    if os.environ.get("NATS_URL"):
        return os.environ["NATS_URL"]
    if reachable("127.0.0.1", 4222):
        return "nats://127.0.0.1:4222"
    from flunq_events.devservers import NatsServer

    return _start("nats", NatsServer).url


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """A Kafka-protocol broker: ``KAFKA_BROKERS`` when set, else a Tansu started for the run."""
    if os.environ.get("KAFKA_BROKERS"):
        return os.environ["KAFKA_BROKERS"]
    from flunq_events.devservers import TansuBroker

    return _start("tansu", TansuBroker).bootstrap


def database_url_of_test_db() -> str:
    """The URL of the database the tests run against (pytest-django's test database)."""
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    # A test that leaves a transaction open must not hold the cluster-wide horizon back for long.
    return (
        f"postgresql://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
        "?options=-c%20idle_in_transaction_session_timeout%3D30000"
    )


class LiveServer:
    """The real ASGI app under uvicorn in a subprocess, on the test database."""

    def __init__(self, port: int, env: dict[str, str]) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        # Kept open for the life of the server, which writes into it.
        self.log = tempfile.NamedTemporaryFile(prefix="flunq-server-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "flunq_events.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {Path(self.log.name).read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {Path(self.log.name).read_text()[-3000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture
def live_server_factory(transactional_db) -> Iterator[Callable[..., LiveServer]]:
    """Start real servers (``factory(**env)``) on the test database; stopped after the test."""
    from flunq_events.devservers import free_port

    started: list[LiveServer] = []
    connection.close()  # the subprocess must not inherit a half-used connection state

    def factory(**extra_env: str) -> LiveServer:
        env = {**os.environ, "DATABASE_URL": database_url_of_test_db(), "PYTHONUNBUFFERED": "1", **extra_env}
        server = LiveServer(free_port(), env)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def live_server_url(live_server_factory) -> str:
    """One real server with auth off (tests of the wire, not of tokens)."""
    return live_server_factory(AUTH_REQUIRED="false").url


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):
    """pytest-django's, plus: close our own connections before it drops the test database."""
    yield
    from events.notify import notifier

    notifier.close()


def pytest_sessionfinish(session, exitstatus):
    for server in _servers.values():
        server.close()
