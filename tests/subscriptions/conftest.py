"""Fixtures for subscription tests: real HTTP receivers on 127.0.0.1, event builders, step loops."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from django.db import connection

from events import horizon
from events.cloudevents import from_structured
from events.services import append


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver. ``respond(received) -> (status, headers)`` decides each answer; a third
    item, the body, is bytes, or an iterable of bytes written one by one with ``body_pause``
    seconds between them and no ``content-length`` (the connection's end ends it)."""

    url: str
    received: list[Received] = field(default_factory=list)
    respond: Callable[[Received], tuple[int, dict[str, str]]] = lambda r: (200, {})
    lock: threading.Lock = field(default_factory=threading.Lock)
    body_pause: float = 0.0

    def events(self, status: int | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [r.event for r in self.received if status is None or getattr(r, "status", None) == status]

    def ok_events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.event for r in self.received if getattr(r, "status", 0) // 100 == 2]


def _handler(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("content-length", "0"))
            item = Received(
                self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)
            )
            status, headers, *body = receiver.respond(item)
            item.status = status
            with receiver.lock:
                receiver.received.append(item)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if not body or isinstance(body[0], bytes):
                content = body[0] if body else b""
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)
                return
            self.end_headers()
            try:
                for chunk in body[0]:
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    time.sleep(receiver.body_pause)
            except OSError:
                pass  # the client went away

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def receiver_factory() -> Iterator[Callable[[], Receiver]]:
    servers = []

    def make() -> Receiver:
        server = ThreadingHTTPServer(("127.0.0.1", 0), None)
        receiver = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hook")
        server.RequestHandlerClass = _handler(receiver)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return receiver

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver(receiver_factory) -> Receiver:
    return receiver_factory()


@pytest.fixture
def allow_local(settings):
    """Let webhooks reach receivers on 127.0.0.1 (tests never leave this machine)."""
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    return settings


def event(type_: str = "task.completed", **attributes: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": uuid.uuid4().hex, "source": "/tests", "type": type_, **attributes}


def append_to(stream: str, count: int = 1, type_: str = "task.completed", **attributes: Any) -> list[int]:
    """Append ``count`` events to ``stream``; returns their positions."""
    result = append([from_structured(event(type_, **attributes)) for _ in range(count)], stream=stream)
    return [item.position for item in result.events]


def caught_up() -> int:
    """Wait until the safe horizon covers every committed event; returns it.

    The horizon is cluster-wide: another test run's open transaction on the same server can hold
    it back for a while (at most its idle-in-transaction timeout).
    """
    with connection.cursor() as cursor:
        cursor.execute('SELECT coalesce(max("position"), 0) FROM flunq_events')
        last = cursor.fetchone()[0]
    reached = horizon.wait_for(last, 60.0)
    assert reached >= last, f"the horizon stayed at {reached}, below {last}"
    return reached


def run_until(step: Callable[[], Any], condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Call ``step`` until ``condition()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        if not step():
            time.sleep(0.01)  # idle: nothing due yet (a backoff or a lease running out)
