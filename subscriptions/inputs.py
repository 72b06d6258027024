"""Request bodies of the subscriptions API, checked: each error is a 400 naming the field.

The functions take decoded JSON and return plain values for ``subscriptions.services``; they never
touch the database.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from events.cloudevents import parse_time
from events.selectors import MAX_TYPE_PATTERNS, is_type_pattern
from flunq_events.errors import InvalidRequest
from flunq_events.numbers import is_digits

# The filter a subscription stores: the fields of events.selectors.EventFilter (without the time
# bounds), named here because each is a column of the subscription.
FILTER_FIELDS = ("types", "source", "subject", "stream", "category", "tenantid", "workflowid", "executionid",
                 "taskid", "correlationid")  # fmt: skip
MAX_TEXT = 2048
MAX_BACKOFF_STEPS = 50
MAX_DELAY = 7 * 24 * 3600.0
MAX_LEASE = 12 * 3600.0


def body_object(data: Any, allowed: tuple[str, ...], what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidRequest(f"the body must be a JSON object ({what})")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise InvalidRequest(
            f"unknown field(s): {', '.join(unknown)}", unknown=unknown, allowed=sorted(allowed)
        )
    return data


def text(value: Any, field: str, *, maximum: int = MAX_TEXT, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise InvalidRequest(f"{field} is required", field=field)
        return None
    if not isinstance(value, str) or not value or len(value) > maximum or "\x00" in value:
        raise InvalidRequest(
            f"{field} must be a non-empty string of at most {maximum} characters", field=field
        )
    return value


def number(value: Any, field: str, *, minimum: float, maximum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRequest(f"{field} must be a number", field=field)
    if not minimum <= value <= maximum:
        raise InvalidRequest(f"{field} must be between {minimum:g} and {maximum:g}, got {value}", field=field)
    return float(value)


def integer(value: Any, field: str, *, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{field} must be an integer", field=field)
    if not minimum <= value <= maximum:
        raise InvalidRequest(f"{field} must be between {minimum} and {maximum}, got {value}", field=field)
    return value


def types_list(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or len(value) > MAX_TYPE_PATTERNS:
        raise InvalidRequest(
            f"{field} must be a list of at most {MAX_TYPE_PATTERNS} event types", field=field
        )
    result = []
    for index, item in enumerate(value):
        name = text(item, f"{field}/{index}", maximum=200)
        if not is_type_pattern(name):
            raise InvalidRequest(
                f"{field}/{index}: {name!r} may use * only at the end (task.* or *)", field=f"{field}/{index}"
            )
        result.append(name)
    return result


def event_filter(value: Any) -> dict[str, Any]:
    """The subscription filter: ``types`` (exact or prefix ``task.*``) and equality fields."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise InvalidRequest("filter must be a JSON object", field="filter")
    unknown = sorted(set(value) - set(FILTER_FIELDS))
    if unknown:
        raise InvalidRequest(
            f"unknown filter field(s): {', '.join(unknown)}",
            field="filter",
            unknown=unknown,
            allowed=list(FILTER_FIELDS),
        )
    clean: dict[str, Any] = {"types": types_list(value.get("types"), "filter/types")}
    for name in FILTER_FIELDS[1:]:
        clean[name] = text(value.get(name), f"filter/{name}")
    return clean


def retry_policy(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequest("retry must be an object with max_attempts and/or backoff", field="retry")
    unknown = sorted(set(value) - {"max_attempts", "backoff"})
    if unknown:
        raise InvalidRequest(f"unknown retry field(s): {', '.join(unknown)}", field="retry", unknown=unknown)
    clean: dict[str, Any] = {}
    if "max_attempts" in value:
        clean["max_attempts"] = integer(value["max_attempts"], "retry/max_attempts", minimum=1, maximum=1000)
    if "backoff" in value:
        backoff = value["backoff"]
        if not isinstance(backoff, list) or not 1 <= len(backoff) <= MAX_BACKOFF_STEPS:
            raise InvalidRequest(
                f"retry/backoff must be a list of 1 to {MAX_BACKOFF_STEPS} delays in seconds",
                field="retry/backoff",
            )
        clean["backoff"] = [
            number(item, f"retry/backoff/{i}", minimum=0, maximum=MAX_DELAY) for i, item in enumerate(backoff)
        ]
    return clean


def position_or_time(value: Any, field: str) -> int | datetime:
    """An integer position (>= 0) or an RFC 3339 time."""
    if isinstance(value, int) and not isinstance(value, bool):
        return integer(value, field, minimum=0, maximum=2**63 - 1)
    if isinstance(value, str):
        if is_digits(value):
            if len(value) > 19:
                raise InvalidRequest(f"{field} is beyond the largest position {2**63 - 1}", field=field)
            return integer(int(value), field, minimum=0, maximum=2**63 - 1)
        try:
            return parse_time(value, field)
        except ValueError as exc:
            raise InvalidRequest(str(exc), field=field) from None
    raise InvalidRequest(f"{field} must be a position (integer) or an RFC 3339 time", field=field)


def start(value: Any) -> str | int | datetime:
    if value is None:
        return "now"
    if value in ("beginning", "now"):
        return value
    try:
        return position_or_time(value, "start")
    except InvalidRequest:
        raise InvalidRequest(
            "start must be 'beginning', 'now', a position (integer) or an RFC 3339 time", field="start"
        ) from None


def lease_seconds(value: Any, field: str = "lease_seconds") -> float:
    return number(value, field, minimum=0.1, maximum=MAX_LEASE)


def choice(value: Any, field: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InvalidRequest(
            f"{field} must be one of {', '.join(choices)}, got {str(value)[:40]!r}", field=field
        )
    return value
