"""ASGI middleware: refuse request bodies over MAX_BODY_BYTES, with or without Content-Length.

Django checks Content-Length only; a chunked body would be read whole first. Here the body is
buffered up to the limit (Django buffers it anyway) and a larger one is answered with 413 and a
JSON error before the application sees it.
"""

from __future__ import annotations

import orjson


class BodyLimitMiddleware:
    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (
                not value.isdigit() or len(value) > 18 or int(value) > self.max_bytes
            ):
                return await self._refuse(scope, send, declared=True)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                return await self._refuse(scope, send, declared=False)
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    async def _refuse(self, scope, send, *, declared: bool) -> None:
        how = "Content-Length" if declared else "body"
        error = {
            "error": "payload_too_large",
            "message": f"the request {how} exceeds the limit of {self.max_bytes} bytes",
            "limit": self.max_bytes,
        }
        if scope.get("path", "").startswith("/schema-registry/"):
            error["error_code"] = 413  # what Confluent's clients read (schemas/confluent.py)
        body = orjson.dumps(error)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
