"""Structured logs: one JSON object per line, with the id of the request being served.

``JSONFormatter`` renders a record as ``{"time", "level", "logger", "message", "request_id", ...}``
plus every field passed with ``extra=`` (so a relay batch logs ``extra={"sink": ..., "events":
...}`` and gets them as fields). ``request_id`` comes from a context variable that
``flunq_events.middleware`` sets per request; code running outside a request can set it with
``bind_request_id`` (a worker may use a batch id).

Chosen with ``LOG_FORMAT`` (``json`` by default, ``plain`` for reading in a terminal); the level
with ``LOG_LEVEL``.
"""

from __future__ import annotations

import contextvars
import logging
from datetime import UTC, datetime
from typing import Any

import orjson

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("flunq_request_id", default=None)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def bind_request_id(value: str | None) -> contextvars.Token:
    return request_id.set(value)


def _default(value: Any) -> Any:
    return str(value)


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = request_id.get()
        if current is not None:
            entry["request_id"] = current
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=_default).decode()
