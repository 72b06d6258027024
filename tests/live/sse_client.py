"""A Server-Sent Events reader over the ASGI app in this process (asgiref's ApplicationCommunicator)."""

from __future__ import annotations

import contextlib

import orjson
from asgiref.testing import ApplicationCommunicator


class SSE:
    def __init__(self, path: str, query: str = "", headers: list[tuple[bytes, bytes]] | None = None) -> None:
        from flunq_events.asgi import application

        self.scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "headers": [(b"host", b"127.0.0.1"), *(headers or [])],
            "server": ("127.0.0.1", 8081),
            "client": ("127.0.0.1", 50000),
        }
        self.communicator = ApplicationCommunicator(application, self.scope)
        self.buffer = b""
        self.status: int | None = None
        self.headers: dict[bytes, bytes] = {}

    async def start(self, timeout: float = 30) -> int:
        await self.communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await self.communicator.receive_output(timeout)
        assert start["type"] == "http.response.start"
        self.status = start["status"]
        self.headers = {name.lower(): value for name, value in start["headers"]}
        return self.status

    async def body(self, timeout: float = 30) -> bytes:
        chunks = []
        while True:
            message = await self.communicator.receive_output(timeout)
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                return b"".join(chunks)

    async def frame(self, timeout: float = 60) -> dict:
        """The next frame with data: {"id": ..., "event": ..., "data": parsed JSON}."""
        while True:
            frame = await self._frame(timeout)
            if "data" in frame:
                return frame

    async def _frame(self, timeout: float) -> dict:
        while b"\n\n" not in self.buffer:
            message = await self.communicator.receive_output(timeout)
            assert message["type"] == "http.response.body"
            self.buffer += message.get("body", b"")
        raw, self.buffer = self.buffer.split(b"\n\n", 1)
        frame: dict = {"event": "message"}
        for line in raw.decode().split("\n"):
            name, _, value = line.partition(": ")
            frame[name] = orjson.loads(value) if name == "data" else value
        return frame

    async def frames_until(self, event: str, timeout: float = 60) -> list[dict]:
        frames = []
        while True:
            frames.append(await self.frame(timeout))
            if frames[-1]["event"] == event:
                return frames

    async def events(self, count: int, timeout: float = 60) -> list[dict]:
        found = []
        while len(found) < count:
            frame = await self.frame(timeout)
            if frame["event"] == "message":
                found.append(frame)
        return found

    async def nothing(self, timeout: float = 0.2) -> bool:
        return b"\n\n" not in self.buffer and await self.communicator.receive_nothing(timeout)

    async def close(self) -> None:
        await self.communicator.send_input({"type": "http.disconnect"})
        with contextlib.suppress(Exception):
            await self.communicator.wait(5)
