"""Fixtures of the live-feed tests: the consumer app, a clean tailer per test, appends off the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import connections

from events import horizon, services
from flunq_events.routing import websocket_urlpatterns
from live import db
from live.tailer import get_tailer, stop_tailer
from tests.events.helpers import new_event

# The consumers without the Origin check (tested on the full ASGI app in test_origin_and_server).
websockets_app = URLRouter(websocket_urlpatterns)


@pytest.fixture(autouse=True)
def _no_lingering_connections():
    # Connections opened by live.db's threads close after each call, so none outlives the test
    # (the test database is dropped at the end of the run).
    settings_dict = connections.settings["default"]
    saved = settings_dict.get("CONN_MAX_AGE")
    settings_dict["CONN_MAX_AGE"] = 0
    yield
    settings_dict["CONN_MAX_AGE"] = saved


@pytest.fixture
async def tailer():
    """The tailer of the test's event loop, stopped (connections closed) after the test."""
    yield get_tailer()
    await stop_tailer()


async def append(*events, **options) -> services.AppendResult:
    """Append through the one append path, in autocommit, off the event loop, and wait until the
    horizon covers it (the horizon is cluster-wide: other sessions' transactions delay it)."""
    result = await db.run(lambda: services.append(list(events), **options))
    await db.run(horizon.wait_for, result.last_position, 60)
    return result


async def append_one(type_: str = "task.completed", **attributes: Any) -> int:
    return (await append(new_event(type_, **attributes))).events[0].position


async def connect(path: str, token: str | None = None, headers=()) -> WebsocketCommunicator:
    all_headers = list(headers)
    if token is not None:
        all_headers.append((b"authorization", f"Bearer {token}".encode()))
    communicator = WebsocketCommunicator(websockets_app, path, headers=all_headers)
    connected, _ = await communicator.connect(timeout=30)
    assert connected
    return communicator


async def receive_until(communicator: WebsocketCommunicator, kind: str, timeout: float = 60) -> list[dict]:
    """Messages up to and including the first control message of ``kind``."""
    messages = []
    while True:
        message = await communicator.receive_json_from(timeout=timeout)
        messages.append(message)
        if "specversion" not in message and message.get("type") == kind:
            return messages


async def receive_events(communicator: WebsocketCommunicator, count: int, timeout: float = 60) -> list[dict]:
    events = []
    while len(events) < count:
        message = await communicator.receive_json_from(timeout=timeout)
        if "specversion" in message:
            events.append(message)
        else:
            assert message["type"] in ("heartbeat", "caught_up", "subscribed"), message
    return events


async def wait_for(predicate: Callable[[], bool], timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


@pytest.fixture
def token_for(make_token):
    """``await token_for(scopes, tenant=None)``: ``make_token`` for async tests."""

    async def make(*args: Any, **kwargs: Any) -> str:
        return await db.run(lambda: make_token(*args, **kwargs))

    return make
