"""Real uvicorn processes: across processes (Redis channel layer), Origin, SSE, a client that stalls."""

from __future__ import annotations

import secrets
import socket

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.events.helpers import cloudevent

pytestmark = pytest.mark.django_db(transaction=True)


def ws_connect(server, path: str, **options) -> ClientConnection:
    url = server.url.replace("http://", "ws://") + path
    options.setdefault("origin", server.url)
    options.setdefault("compression", None)
    return connect(url, open_timeout=30, proxy=None, **options)


def control(ws: ClientConnection, kind: str) -> list[dict]:
    """Messages up to and including the control message ``kind``."""
    messages = []
    while True:
        messages.append(orjson.loads(ws.recv(timeout=60)))
        if "specversion" not in messages[-1] and messages[-1]["type"] == kind:
            return messages


def events(ws: ClientConnection, count: int) -> list[dict]:
    found = []
    while len(found) < count:
        message = orjson.loads(ws.recv(timeout=60))
        if "specversion" in message:
            found.append(message)
    return found


def post(server, body) -> list[int]:
    response = httpx.post(f"{server.url}/api/v1/events", json=body, timeout=60)
    assert response.status_code == 201, response.text
    data = response.json()
    return [e["position"] for e in data["events"]] if "events" in data else [data["position"]]


def test_an_event_appended_through_one_process_reaches_websockets_on_another(live_server_factory, redis_url):
    one = live_server_factory(AUTH_REQUIRED="false", REDIS_URL=redis_url)
    two = live_server_factory(AUTH_REQUIRED="false", REDIS_URL=redis_url)
    with ws_connect(one, "/ws/events") as ws_one, ws_connect(two, "/ws/events?types=task.*") as ws_two:
        control(ws_one, "caught_up")
        control(ws_two, "caught_up")
        [first] = post(one, cloudevent("task.via-one"))
        [second] = post(two, cloudevent("task.via-two"))
        for ws in (ws_one, ws_two):
            got = events(ws, 2)
            assert [(e["position"], e["type"]) for e in got] == [
                (first, "task.via-one"),
                (second, "task.via-two"),
            ]


def test_origin_sse_and_a_stalled_client_on_one_process(live_server_factory):
    server = live_server_factory(AUTH_REQUIRED="false", LIVE_CLIENT_BUFFER="5", LIVE_PAGE_SIZE="10")

    # Origin: browsers send it; another site's page is refused at the handshake. Service clients
    # send none and are left to the token check.
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(server, "/ws/events", origin="http://evil.example")
    assert refused.value.response.status_code == 403
    with ws_connect(server, "/ws/events", origin=None):
        pass

    # SSE over real HTTP, resumable from the id of the last frame.
    [position] = post(server, cloudevent("task.sse"))
    with httpx.stream(
        "GET", f"{server.url}/api/v1/events/stream?from={position - 1}", timeout=60
    ) as response:
        assert response.status_code == 200
        data = next(line for line in response.iter_lines() if line.startswith('data: {"specversion"'))
        assert orjson.loads(data[6:])["position"] == position

    # A client that stops reading: the server queues at most LIVE_CLIENT_BUFFER events for it,
    # then sends resync with the position to resume from and closes with 4100.
    # A small receive buffer (no autotuning) so that the server's sends block after a few MB.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.connect(("127.0.0.1", server.port))
    with ws_connect(server, "/ws/events", sock=sock, max_queue=1, max_size=2**20) as ws:
        start = control(ws, "caught_up")[-1]["position"]
        appended = []
        for _batch in range(16):
            appended += post(
                server, [cloudevent("task.bulk", data=secrets.token_hex(30_000)) for _ in range(10)]
            )
        received, resync = [], None
        try:
            while True:
                message = orjson.loads(ws.recv(timeout=60))
                if "specversion" in message:
                    received.append(message["position"])
                elif message["type"] == "resync":
                    resync = message["position"]
        except ConnectionClosed as closed:
            assert closed.rcvd.code == 4100
    assert resync is not None and start < resync < appended[-1]
    assert received == [p for p in appended if p <= resync]
    with ws_connect(server, f"/ws/events?from={resync}", max_size=2**20) as ws:
        received += [e["position"] for e in events(ws, len(appended) - len(received))]
    assert received == appended


def test_events_of_every_size_reach_clients_with_and_without_compression(live_server_factory):
    # Without an extension the server writes each event's frame, encoded once per process, to the
    # socket itself (live.wire); a client that negotiated permessage-deflate gets frames through
    # ASGI. Both get the same events, in order, as the REST API renders them.
    server = live_server_factory(AUTH_REQUIRED="false")
    with (
        ws_connect(server, "/ws/events") as plain,
        ws_connect(server, "/ws/events", compression="deflate", max_size=2**20) as deflated,
    ):
        assert plain.protocol.extensions == [] and deflated.protocol.extensions != []
        control(plain, "caught_up")
        control(deflated, "caught_up")
        sizes = [0, 100, 70_000, 300_000]  # frame lengths in the 7-bit, 16-bit and 64-bit forms
        bodies = [cloudevent("task.sized", data={"blob": "é" * size}) for size in sizes]
        positions = [p for body in bodies for p in post(server, body)]
        got = {name: events(ws, len(positions)) for name, ws in (("plain", plain), ("deflated", deflated))}
    # Read after the feeds delivered them: the horizon covers them now, for the REST API too.
    rest = httpx.get(f"{server.url}/api/v1/events?after={positions[0] - 1}&limit=10", timeout=60).json()
    assert [e["position"] for e in rest["events"]] == positions
    assert got["plain"] == got["deflated"] == rest["events"]
