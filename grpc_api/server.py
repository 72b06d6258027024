"""Build and run the gRPC server: the flunq services, server reflection, the standard health service.

    server = GrpcServer(host="127.0.0.1", port=9001)
    await server.start()          # binds; health says SERVING
    await server.stop(grace=5)    # NOT_SERVING, drains calls, stops

Requests larger than ``GRPC_MAX_MESSAGE_BYTES`` are refused by grpcio with RESOURCE_EXHAUSTED
before anything is decoded.
"""

from __future__ import annotations

import grpc
from django.conf import settings
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from grpc_api.event_store import EventStore
from grpc_api.generated.flunq.events.v1 import events_pb2 as pb
from grpc_api.rpc import DatabaseThreads, method_handlers
from grpc_api.snapshots import Snapshots
from grpc_api.subscribe import notifier
from grpc_api.subscriptions import Subscriptions

SERVICES = [
    pb.DESCRIPTOR.services_by_name["EventStore"],
    pb.DESCRIPTOR.services_by_name["Snapshots"],
    pb.DESCRIPTOR.services_by_name["Subscriptions"],
]


class GrpcServer:
    def __init__(self, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = settings.GRPC_PORT if port is None else port
        self.threads = DatabaseThreads(settings.GRPC_DB_THREADS)
        self.health = health.aio.HealthServicer()
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", settings.GRPC_MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),  # a second server on a busy port must fail, not share it
            ]
        )
        servicers = {
            "EventStore": EventStore(self.threads),
            "Snapshots": Snapshots(self.threads),
            "Subscriptions": Subscriptions(self.threads),
        }
        for service in SERVICES:
            handlers = method_handlers(servicers[service.name], service, self.threads)
            self.server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service.full_name, handlers),)
            )
            self.server.add_registered_method_handlers(service.full_name, handlers)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        names = [service.full_name for service in SERVICES]
        reflection.enable_server_reflection(
            [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )

    async def start(self) -> int:
        """Bind and start serving; returns the port (useful when 0 asked for a free one)."""
        bound = self.server.add_insecure_port(f"{self.host}:{self.port}")  # RuntimeError if it cannot
        if not bound:
            raise OSError(f"cannot listen on {self.host}:{self.port}")
        self.port = bound
        await self.server.start()
        for name in ["", *(service.full_name for service in SERVICES)]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        return self.port

    async def stop(self, grace: float = 5.0) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await notifier.close()
        self.threads.shutdown()

    async def wait(self) -> None:
        await self.server.wait_for_termination()
