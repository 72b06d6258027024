"""REST plumbing shared by every app: strict JSON in, fast JSON out, JSON errors everywhere.

- ``JSONParser`` accepts ``application/json`` and the CloudEvents media types and decodes with
  ``jsonutil.loads_strict`` (no NaN, no ``\\u0000``, bounded depth and integers).
- ``JSONRenderer`` renders with orjson; pre-serialised JSON (event ``data`` read from the store as
  text) passes through as ``orjson.Fragment`` without being decoded and encoded again.
- ``exception_handler`` turns every error, ours and DRF's, into ``{"error": code, "message": ...}``.
- ``allow_methods`` does the same for the plain Django views (health, metrics, SSE): another
  method is a 405 JSON body, not Django's CSRF page.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.utils.http import parse_header_parameters
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, parsers, renderers, status
from rest_framework.response import Response

from flunq_events.errors import ServiceError
from flunq_events.jsonutil import JSONError, loads_strict

CLOUDEVENTS_JSON = "application/cloudevents+json"
CLOUDEVENTS_BATCH = "application/cloudevents-batch+json"


def _default(value: Any) -> Any:
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", "replace")
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS)


class JSONRenderer(renderers.BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        return dumps(data)


def charset_of(media_type: str) -> str | None:
    if ";" not in media_type:  # no parameters: the common case, on every append
        return None
    charset = parse_header_parameters(media_type)[1].get("charset")
    return charset.lower() if charset is not None else None


def utf8_charset(media_type: str) -> bool:
    """Whether a body of ``media_type`` read as text (JSON, ``text/*``) is read as it is: the
    service reads UTF-8 (JSON is UTF-8, RFC 8259), and a body declared in another charset would
    be read wrong, so it is refused (415)."""
    return charset_of(media_type) in (None, "utf-8", "utf8", "us-ascii")


class JSONParser(parsers.BaseParser):
    """Strict JSON for ``application/json`` and the structured and batch CloudEvents media types."""

    media_type = "application/*"

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        if not utf8_charset(media_type or ""):
            raise exceptions.UnsupportedMediaType(
                media_type, detail=f"JSON is read as UTF-8, not {charset_of(media_type or '')!r}"
            )
        raw = stream.read() if stream is not None else b""
        if not raw:
            raise exceptions.ParseError("the request body is empty")
        try:
            return loads_strict(raw, max_depth=settings.MAX_JSON_DEPTH)
        except JSONError as exc:
            raise exceptions.ParseError(str(exc)) from None


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "message": message, **extra}


_DRF_CODES = {
    status.HTTP_400_BAD_REQUEST: "invalid_request",
    status.HTTP_401_UNAUTHORIZED: "unauthenticated",
    status.HTTP_403_FORBIDDEN: "forbidden",
    status.HTTP_404_NOT_FOUND: "not_found",
    status.HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
    status.HTTP_406_NOT_ACCEPTABLE: "not_acceptable",
    status.HTTP_413_REQUEST_ENTITY_TOO_LARGE: "payload_too_large",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
    status.HTTP_429_TOO_MANY_REQUESTS: "rate_limited",
}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ServiceError):
        return Response(exc.as_dict(), status=exc.http_status)
    if isinstance(exc, RequestDataTooBig):
        return Response(
            error_body("payload_too_large", f"the body exceeds {settings.MAX_BODY_BYTES} bytes"),
            status=413,
        )
    # Imported here: rest_framework.views reads the renderer classes (this module) when imported.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = _DRF_CODES.get(response.status_code, "error")
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body(code, "the request is invalid", fields=response.data)
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else response.data
        response.data = error_body(code, str(detail))
    return response


def json_error_response(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


def handler404(request, exception=None) -> JsonResponse:
    return json_error_response(404, "not_found", f"no route for {request.path}")


def handler500(request) -> JsonResponse:
    return json_error_response(500, "internal_error", "internal error; see the server log")


def allow_methods(*methods: str) -> Callable:
    """For a plain Django view (sync or async) that changes nothing: ``methods`` only, any other
    a 405 JSON body naming them. Exempt from the CSRF check, which would otherwise answer a POST
    with its HTML page before the view could say 405."""

    def refuse(request: HttpRequest) -> JsonResponse:
        response = JsonResponse(
            {"error": "method_not_allowed",
             "message": f"method {request.method} not allowed; use {' or '.join(methods)}"},
            status=405,
        )  # fmt: skip
        response["Allow"] = ", ".join(methods)
        return response

    def decorate(view: Callable) -> Callable:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def checked(request, *args, **kwargs):
                if request.method not in methods:
                    return refuse(request)
                return await view(request, *args, **kwargs)

        else:

            @functools.wraps(view)
            def checked(request, *args, **kwargs):
                if request.method not in methods:
                    return refuse(request)
                return view(request, *args, **kwargs)

        return csrf_exempt(checked)

    return decorate
