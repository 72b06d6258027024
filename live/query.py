"""What a live client asks for: the filter and where to start, from a query string or a message.

Shared by the websocket consumer, the SSE view and filter-change messages, so all three accept
the same names and refuse the same mistakes with the same ``InvalidRequest`` message:

    types        exact type or prefix wildcard (``task.*``, ``*``); repeatable, or comma-separated
    stream, category, workflowid, executionid, tenantid, source     exact match
    from         a position, an RFC 3339 time, ``beginning`` or ``now`` (the default)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events import horizon, selectors
from events.cloudevents import check_stream_name, parse_time
from events.selectors import EventFilter, check_type_patterns
from flunq_events.errors import InvalidRequest, ServiceError
from flunq_events.numbers import is_digits

FILTERS = ("types", "stream", "category", "workflowid", "executionid", "tenantid", "source")
START = "from"
MAX_TEXT = 2048
POSITION_MAX = 2**63 - 1


class Forbidden(ServiceError):
    code = "forbidden"
    http_status = 403


@dataclass(frozen=True, slots=True)
class Start:
    """Where a feed starts: after ``position``, or at a moment, the beginning, or the horizon."""

    kind: str  # "position" | "time" | "beginning" | "now"
    position: int | None = None
    moment: datetime | None = None

    def resolve(self) -> int:
        """The position after which the feed starts (reads the database for ``now`` and times)."""
        if self.kind == "position":
            # At most the end of the log, as a subscription's start (horizon.log_end says why).
            return min(self.position, horizon.log_end())
        if self.kind == "beginning":
            return 0
        if self.kind == "time":
            return selectors.position_at(self.moment)
        return horizon.current()


NOW = Start("now")


def parse_start(value: Any, name: str = START) -> Start:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string or an integer", parameter=name)
    text = value.strip()
    if text in ("", "now"):
        return NOW
    if text == "beginning":
        return Start("beginning")
    if is_digits(text):
        if len(text) > 19 or int(text) > POSITION_MAX:
            raise InvalidRequest(f"{name} is beyond the largest position {POSITION_MAX}", parameter=name)
        return Start("position", position=int(text))
    try:
        return Start("time", moment=parse_time(text, name))
    except ValueError:
        raise InvalidRequest(
            f"{name} must be a position (an integer >= 0), an RFC 3339 time such as "
            f"2026-01-31T12:00:00Z, 'beginning' or 'now'; got {text[:60]!r}",
            parameter=name,
        ) from None


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string, got {type(value).__name__}", parameter=name)
    if not value or "\x00" in value or len(value) > MAX_TEXT:
        raise InvalidRequest(f"{name} must be 1 to {MAX_TEXT} characters without NUL", parameter=name)
    return value


def parse_types(values: Sequence[Any]) -> list[str]:
    types: list[str] = []
    for value in values:
        patterns = [item.strip() for item in _text("types", value).split(",") if item.strip()]
        if not patterns:  # "," from an empty list would otherwise mean every type
            raise InvalidRequest(f"types: no type in {value[:60]!r}", parameter="types")
        types.extend(patterns)
    return check_type_patterns(types, "types")


def parse_filter(values: Mapping[str, Sequence[Any]], *, stream: str | None = None) -> EventFilter:
    """An ``EventFilter`` from ``{name: [values...]}``; ``stream`` fixed by the route wins."""
    filter_ = EventFilter(types=parse_types(values.get("types", ())))
    for name in FILTERS[1:]:
        given = values.get(name, ())
        if not given:
            continue
        if len(given) > 1:
            raise InvalidRequest(f"{name} may be given once, got {len(given)} values", parameter=name)
        if name == "stream" and stream is not None:
            raise InvalidRequest("stream is given by the path /ws/streams/{stream}", parameter=name)
        setattr(filter_, name, _text(name, given[0]))
    if stream is not None:
        filter_.stream = check_stream_name(_text("stream", stream))
    return filter_


def parse_query(
    values: Mapping[str, Sequence[Any]], *, stream: str | None = None, extra: Sequence[str] = ()
) -> tuple[EventFilter, Start]:
    """Filter and start from a parsed query string; unknown names are refused, naming the allowed."""
    allowed = {*FILTERS, START, *extra}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise InvalidRequest(
            f"unknown parameter(s): {', '.join(name[:60] for name in unknown[:10])}",
            unknown=unknown[:10],
            allowed=sorted(allowed),
        )
    starts = values.get(START, ())
    if len(starts) > 1:
        raise InvalidRequest(f"{START} may be given once", parameter=START)
    start = parse_start(starts[0]) if starts else NOW
    return parse_filter(values, stream=stream), start


def describe(filter_: EventFilter) -> dict[str, Any]:
    """The filter as the client sees it echoed back (only what is set)."""
    out: dict[str, Any] = {}
    if filter_.types:
        out["types"] = list(filter_.types)
    for name in FILTERS[1:]:
        value = getattr(filter_, name)
        if value is not None:
            out[name] = value
    return out
