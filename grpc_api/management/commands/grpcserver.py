"""``python manage.py grpcserver``: serve the gRPC API on GRPC_PORT until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Serve the gRPC API (flunq.events.v1) with reflection and health; SIGTERM stops it gracefully."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=None, help="port (default GRPC_PORT)")
        parser.add_argument("--grace", type=float, default=5.0, help="seconds to let calls finish on stop")

    def handle(self, *args, host: str, port: int | None, grace: float, **options) -> None:
        if port is not None and not 0 <= port <= 65535:  # 0: any free port
            raise CommandError(f"--port: 0 to 65535, got {port}")
        asyncio.run(self.serve(host, settings.GRPC_PORT if port is None else port, grace))

    async def serve(self, host: str, port: int, grace: float) -> None:
        from grpc_api.server import GrpcServer

        server = GrpcServer(host=host, port=port)
        try:
            bound = await server.start()
        except (RuntimeError, OSError) as exc:
            if "bind" not in str(exc).lower() and "listen" not in str(exc).lower():
                raise
            raise CommandError(f"cannot listen on {host}:{port}: {exc}") from None  # grpcio: Failed to bind
        self.stdout.write(f"gRPC serving on {host}:{bound}", ending="\n")
        self.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop(grace)
