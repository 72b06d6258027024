"""The server itself: health, reflection, checked-in stubs (a clean SIGTERM stop: test_bad_input)."""

from __future__ import annotations

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
