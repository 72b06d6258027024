"""Websocket text frames encoded once per process and written to a connection in one call.

A server's frames are not masked, so the frame of an event is the same bytes for every client
without a negotiated extension: ``text_frame`` builds it once (``LiveEvent.frame``), and
``FrameWriter`` writes a run of such frames to one connection with a single write, instead of one
ASGI ``websocket.send`` (one frame encoding, one socket write) per event and client.

ASGI has no message for "several frames at once", so ``FrameWriter.for_send`` recognises uvicorn's
default websocket protocol (websockets-sansio, the version pinned in requirements.txt) behind the
ASGI ``send`` and writes to its transport after the same checks uvicorn's ``send`` makes: wait
while the transport is paused (the client does not read: backpressure), and stop once the
connection is closing. Anything else (another server, permessage-deflate negotiated, whose frames
differ per connection) gets ``None`` and the caller sends each event through ASGI as before.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

_TEXT = 0x81  # FIN + opcode 1 (text)


def text_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked text frame (RFC 6455 section 5.2)."""
    size = len(payload)
    if size < 126:
        return bytes((_TEXT, size)) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", _TEXT, 126, size) + payload
    return struct.pack("!BBQ", _TEXT, 127, size) + payload


class FrameWriter:
    """Writes encoded frames to one uvicorn websocket connection, as its ``send`` would."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    @classmethod
    def for_send(cls, send: Callable[[dict[str, Any]], Any]) -> FrameWriter | None:
        """A writer for the connection behind an accepted websocket's ASGI ``send``, or None."""
        protocol = getattr(send, "__self__", None)
        if type(protocol) is not WebSocketsSansIOProtocol or protocol.conn.extensions:
            return None
        return cls(protocol)

    async def write(self, frames: bytes) -> None:
        protocol = self._protocol
        if not protocol.writable.is_set():
            await protocol.writable.wait()
        if protocol.disconnected or protocol.close_sent or protocol.conn.state is not State.OPEN:
            raise ClientDisconnected()
        protocol.transport.write(frames)
