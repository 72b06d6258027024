"""Turn an HTTP request into events: structured, binary (``ce-*`` headers) or batch mode."""

from __future__ import annotations

from django.conf import settings

from events.cloudevents import NewEvent, from_binary, from_structured, is_json_media_type
from flunq_events.api import CLOUDEVENTS_BATCH, CLOUDEVENTS_JSON, utf8_charset
from flunq_events.errors import InvalidRequest, ServiceError
from flunq_events.jsonutil import JSONError, loads_strict

STRUCTURED_TYPES = ("", "application/json", CLOUDEVENTS_JSON, CLOUDEVENTS_BATCH)


class UnsupportedMediaType(ServiceError):
    code = "unsupported_media_type"
    http_status = 415


def _loads(body: bytes):
    try:
        return loads_strict(body, max_depth=settings.MAX_JSON_DEPTH)
    except JSONError as exc:
        raise InvalidRequest(str(exc), error_kind="invalid_json") from None


def events_from_request(request) -> tuple[list[NewEvent], bool]:
    """The events of a POST and whether it was a batch."""
    meta = request.META
    content_type = meta.get("CONTENT_TYPE", "") or ""
    body = request.body
    # utf8_charset first: it is a substring test for the usual Content-Type, which has no charset.
    if not utf8_charset(content_type) and (
        is_json_media_type(content_type) or content_type.lower().lstrip().startswith("text/")
    ):
        raise UnsupportedMediaType(
            f"bodies are read as UTF-8; Content-Type {content_type[:100]!r} declares another charset"
        )
    if "HTTP_CE_SPECVERSION" in meta:
        headers = {key[8:].lower(): value for key, value in meta.items() if key.startswith("HTTP_CE_")}
        return [from_binary(headers, body, content_type or None, _loads)], False
    essence = content_type.split(";", 1)[0].strip().lower()
    if essence not in STRUCTURED_TYPES:
        raise UnsupportedMediaType(
            f"unsupported Content-Type {essence!r}: send {CLOUDEVENTS_JSON}, {CLOUDEVENTS_BATCH}, "
            "application/json, or binary mode with ce-* headers"
        )
    if not body:
        raise InvalidRequest("the request body is empty")
    document = _loads(body)
    if essence == CLOUDEVENTS_BATCH or isinstance(document, list):
        if not isinstance(document, list):
            raise InvalidRequest("a batch must be a JSON array of CloudEvents")
        if not document:
            raise InvalidRequest("the batch is empty")
        if len(document) > settings.MAX_BATCH_EVENTS:
            raise InvalidRequest(
                f"a batch holds at most {settings.MAX_BATCH_EVENTS} events, got {len(document)}",
                limit=settings.MAX_BATCH_EVENTS,
            )
        return [from_structured(item, index) for index, item in enumerate(document)], True
    return [from_structured(document)], False
