"""The body limit in front of the application: a JSON 413, in Confluent's shape under its API too."""

from __future__ import annotations

import orjson

from flunq_events.limits import BodyLimitMiddleware


async def _refused(path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, dict]:
    async def app(scope, receive, send):  # never reached
        raise AssertionError("the application saw a body over the limit")

    messages = iter([{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                     for i, c in enumerate(chunks)])  # fmt: skip
    sent: list[dict] = []

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "path": path, "headers": headers}
    await BodyLimitMiddleware(app, max_bytes=10)(scope, receive, send)
    return sent[0]["status"], orjson.loads(sent[1]["body"])


async def test_a_body_over_the_limit_with_and_without_content_length():
    status, body = await _refused("/api/v1/events", [(b"content-length", b"11")], [b"x" * 11])
    assert status == 413 and body["error"] == "payload_too_large" and "error_code" not in body
    status, body = await _refused("/api/v1/events", [], [b"x" * 6, b"x" * 6])
    assert status == 413 and body["limit"] == 10


async def test_under_the_confluent_api_the_413_carries_an_error_code():
    status, body = await _refused("/schema-registry/subjects/s/versions", [], [b"x" * 11])
    assert status == 413 and body["error_code"] == 413 and body["message"]
