"""``/healthz`` (the process answers) and ``/readyz`` (it can serve: database and migrations)."""

from __future__ import annotations

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse

from flunq_events.api import allow_methods

# Readiness checks added by other parts (channel layer, relay backends): name -> callable
# returning a dict with at least {"ok": bool}.
READINESS_CHECKS: dict = {}


@allow_methods("GET", "HEAD")
def healthz(request) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database() -> dict:
    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # any failure to reach the database means not ready
        return {"ok": False, "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
    if pending:
        return {"ok": False, "error": f"{len(pending)} migration(s) not applied"}
    return {"ok": True}


def _channel_layer() -> dict:
    """A message sent to and received from a fresh channel (Redis across processes, or memory)."""
    import asyncio

    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    backend = type(layer).__name__

    async def round_trip() -> None:
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "readyz.ping"})
        await asyncio.wait_for(layer.receive(channel), 2.0)

    try:
        async_to_sync(round_trip)()
    except Exception as exc:  # unreachable Redis, timeout: not ready
        return {"ok": False, "backend": backend, "error": str(exc) or type(exc).__name__}
    return {"ok": True, "backend": backend}


READINESS_CHECKS["channel_layer"] = _channel_layer


@allow_methods("GET", "HEAD")
def readyz(request) -> JsonResponse:
    checks = {"database": _database()}
    for name, check in READINESS_CHECKS.items():
        try:
            checks[name] = check()
        except Exception as exc:  # a broken check reports, it does not crash the probe
            checks[name] = {"ok": False, "error": str(exc)}
    ready = all(check.get("ok") for check in checks.values())
    return JsonResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503
    )
