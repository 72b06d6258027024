"""Websocket frames encoded once per process: what ``text_frame`` builds, a websocket parser reads."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from live.wire import FrameWriter, text_frame


def parse(data: bytes) -> tuple[Frame, bytes]:
    """One frame as a client parses it (unmasked, as servers send), and what follows it."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        return done.value, bytes(reader.buffer)
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 200_000])
def test_a_text_frame_of_every_length_encoding_parses_back(size):
    payload = ("é" * size).encode()[:size]
    frame, rest = parse(text_frame(payload) + b"next")
    assert (frame.opcode, frame.fin, frame.data, rest) == (Opcode.TEXT, True, payload, b"next")


def test_frames_written_back_to_back_parse_one_by_one():
    payloads = [b'{"position": 1}', b"x" * 300, b"y" * 70_000]
    data = b"".join(text_frame(p) for p in payloads)
    parsed = []
    while data:
        frame, data = parse(data)
        parsed.append(frame.data)
    assert parsed == payloads


def test_no_writer_for_a_send_that_is_not_uvicorns_websocket_protocol():
    async def send(message):  # e.g. Channels' test communicator or another ASGI server
        pass

    assert FrameWriter.for_send(send) is None


async def test_uvicorns_websocket_protocol_gets_a_writer_unless_compression_was_negotiated():
    # A real uvicorn (the pinned version, default websocket protocol) in this event loop: the app
    # writes one frame through the writer when it gets one, else sends through ASGI.
    import asyncio

    import uvicorn
    from websockets.asyncio.client import connect

    from flunq_events.devservers import free_port

    async def app(scope, receive, send):
        if scope["type"] != "websocket":
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        writer = FrameWriter.for_send(send)
        if writer is None:
            await send({"type": "websocket.send", "text": "through asgi"})
        else:
            await writer.write(text_frame(b"written once") + text_frame(b"in one write"))
        await receive()  # until the client closes

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        async with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
            assert await ws.recv() == "written once"
            assert await ws.recv() == "in one write"
        async with connect(f"ws://127.0.0.1:{port}/", compression="deflate") as ws:
            assert await ws.recv() == "through asgi"
    finally:
        server.should_exit = True
        await serving
