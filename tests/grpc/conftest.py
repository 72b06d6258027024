"""A real gRPC server (``manage.py grpcserver`` in a subprocess) on the test database, and clients."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from grpc_api.generated.flunq.events.v1 import events_pb2_grpc
from tests.conftest import ROOT, database_url_of_test_db


class GrpcProcess:
    def __init__(self, env: dict[str, str]) -> None:
        from flunq_events.devservers import free_port

        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="flunq-grpc-", suffix=".log", delete=False)  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "grpcserver", "--port", str(self.port), "--grace", "1"],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": database_url_of_test_db(), "PYTHONUNBUFFERED": "1", **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_serving()

    def _wait_serving(self) -> None:
        deadline = time.monotonic() + 30
        with grpc.insecure_channel(self.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"grpcserver exited: {self.output()[-3000:]}")
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    time.sleep(0.05)
        raise RuntimeError(f"grpcserver did not start: {self.output()[-3000:]}")

    def output(self) -> str:
        return Path(self.log.name).read_text()

    def stop(self) -> int:
        self.process.terminate()
        try:
            return self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@pytest.fixture(scope="session")
def grpc_server_factory(django_db_setup, django_db_blocker) -> Iterator[Callable[..., GrpcProcess]]:
    """``factory(**env)``: a server with these extra environment variables, shared by the session."""
    servers: dict[tuple, GrpcProcess] = {}

    def factory(**env: str) -> GrpcProcess:
        key = tuple(sorted(env.items()))
        if key not in servers:
            servers[key] = GrpcProcess(env)
        return servers[key]

    yield factory
    for server in servers.values():
        server.stop()


@pytest.fixture
def grpc_server(grpc_server_factory, transactional_db) -> GrpcProcess:
    """The server with auth on (the default), for a test on the committed test database."""
    return grpc_server_factory()


@pytest.fixture
def channel(grpc_server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(grpc_server.target) as channel:
        yield channel


class _WithMetadata:
    def __init__(self, stub: object, metadata: list[tuple[str, str]]) -> None:
        self._stub = stub
        self._metadata = metadata

    def __getattr__(self, name: str) -> Callable:
        method = getattr(self._stub, name)

        def call(request, **options):
            options.setdefault("metadata", self._metadata)
            options.setdefault("timeout", 30)
            return method(request, **options)

        return call


class Client:
    """The generated stubs with a bearer token in every call's metadata (and a 30 s deadline)."""

    def __init__(self, channel: grpc.Channel, token: str | None) -> None:
        self.metadata = [("authorization", f"Bearer {token}")] if token else []
        self.events = _WithMetadata(events_pb2_grpc.EventStoreStub(channel), self.metadata)
        self.snapshots = _WithMetadata(events_pb2_grpc.SnapshotsStub(channel), self.metadata)
        self.subscriptions = _WithMetadata(events_pb2_grpc.SubscriptionsStub(channel), self.metadata)


@pytest.fixture
def client(channel, make_token) -> Client:
    return Client(channel, make_token(["events:read", "events:write"]))


@pytest.fixture
def admin_client(channel, make_token) -> Client:
    return Client(channel, make_token(["admin"]))
