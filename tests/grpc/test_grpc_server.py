"""The server itself: health, reflection, checked-in stubs (a clean SIGTERM stop: test_bad_input)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from grpc_api import codegen


def test_checked_in_stubs_match_the_protos():
    assert codegen.main(["--check"]) == 0, "run `make proto`"


def test_health_and_reflection(channel):
    health = health_pb2_grpc.HealthStub(channel)
    for service in (
        "",
        "flunq.events.v1.EventStore",
        "flunq.events.v1.Snapshots",
        "flunq.events.v1.Subscriptions",
    ):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
    )
    names = {service.name for reply in replies for service in reply.list_services_response.service}
    assert {
        "flunq.events.v1.EventStore",
        "flunq.events.v1.Snapshots",
        "flunq.events.v1.Subscriptions",
        "grpc.health.v1.Health",
    } <= names
    replies = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(file_containing_symbol="flunq.events.v1.EventStore")]),
        timeout=10,
    )
    assert any(reply.file_descriptor_response.file_descriptor_proto for reply in replies)


def test_grpcserver_refuses_a_port_out_of_range_or_taken():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="--port: 0 to 65535"):
        call_command("grpcserver", "--port", "99999")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = subprocess.run(  # a subprocess: were the port taken after all, it would serve on
            [sys.executable, "manage.py", "grpcserver", "--port", port],
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            timeout=60,
        )
    assert done.returncode != 0 and b"cannot listen on 127.0.0.1" in done.stderr, done.stderr[-2000:]
