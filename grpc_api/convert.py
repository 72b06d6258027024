"""Between protobuf messages and the service layer: CloudEvents in, recorded events out, filters.

Incoming ``io.cloudevents.v1.CloudEvent`` messages become the same JSON-shaped dict a REST client
sends and go through ``events.cloudevents.from_structured``, so both APIs validate identically.
Attribute values: booleans, integers and strings as such; ``ce_uri``/``ce_uri_ref`` as strings;
``ce_timestamp`` as RFC 3339; ``ce_bytes`` as base64 (the CloudEvents JSON form of Binary).
Data: ``text_data`` is JSON when the datacontenttype is absent or JSON, else text; ``binary_data``
is JSON under a JSON datacontenttype, text under ``text/*``, else stored as bytes; ``proto_data``
is refused. Outgoing events carry ``stream``, ``version``, ``position`` (decimal strings, as
CloudEvents integers are 32-bit) and ``recordedtime`` as extension attributes.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from django.conf import settings
from google.protobuf.timestamp_pb2 import Timestamp

from events import selectors, services
from events.cloudevents import DATA_KEYS, REQUIRED, NewEvent, format_time, from_structured, is_json_media_type
from flunq_events.errors import InvalidEvent, InvalidRequest
from flunq_events.jsonutil import JSONError, loads_strict
from grpc_api.generated.flunq.events.v1 import events_pb2 as pb
from grpc_api.generated.io.cloudevents.v1 import cloudevents_pb2 as ce

INT32 = 2**31
_EXPECTED_STATES = {
    pb.EXPECTED_STATE_ANY: services.ANY,
    pb.EXPECTED_STATE_NO_STREAM: services.NO_STREAM,
    pb.EXPECTED_STATE_STREAM_EXISTS: services.STREAM_EXISTS,
}
_CORE = {"id", "source", "specversion", "type"}


# ---- in ----------------------------------------------------------------------------------------


def _where(index: int | None, name: str) -> str:
    return f"/{index}/{name}" if index is not None else f"/{name}"


def _attribute(value: ce.CloudEvent.CloudEventAttributeValue, index: int | None, name: str) -> Any:
    kind = value.WhichOneof("attr")
    if kind is None:
        raise InvalidEvent(
            f"{_where(index, name)}: the attribute has no value", attribute=_where(index, name)
        )
    if kind == "ce_timestamp":
        try:
            return format_time(value.ce_timestamp.ToDatetime(tzinfo=UTC))
        except (ValueError, OverflowError) as exc:  # outside years 1-9999: grpcio would say UNKNOWN
            raise InvalidEvent(
                f"{_where(index, name)}: not a valid timestamp: {exc}", attribute=_where(index, name)
            ) from None
    if kind == "ce_bytes":
        return base64.b64encode(value.ce_bytes).decode("ascii")
    return _without_nul(getattr(value, kind), index, name)


def _without_nul(value: Any, index: int | None, name: str) -> Any:
    # A REST body cannot carry NUL (the JSON parser refuses \u0000), but a protobuf string can, and
    # PostgreSQL cannot store it: refuse it here rather than fail in the database.
    if isinstance(value, str) and "\x00" in value:
        raise InvalidEvent(f"{_where(index, name)}: must not contain NUL", attribute=_where(index, name))
    return value


def _json(raw: str | bytes, index: int | None) -> Any:
    try:
        return loads_strict(raw, max_depth=settings.MAX_JSON_DEPTH)
    except JSONError as exc:
        raise InvalidEvent(f"{_where(index, 'data')}: {exc}", attribute=_where(index, "data")) from None


def new_event(message: ce.CloudEvent, index: int | None = None) -> NewEvent:
    """One CloudEvent message as a validated ``NewEvent`` (``InvalidEvent`` names the attribute)."""
    obj: dict[str, Any] = {
        "id": _without_nul(message.id, index, "id"),
        "source": _without_nul(message.source, index, "source"),
        "specversion": _without_nul(message.spec_version, index, "specversion"),
        "type": _without_nul(message.type, index, "type"),
    }
    for name, value in message.attributes.items():
        if name in REQUIRED or name in DATA_KEYS or name == "spec_version":
            raise InvalidEvent(
                f"{_where(index, name)}: set {name} in its own field, not in the attributes map",
                attribute=_where(index, name),
            )
        obj[name] = _attribute(value, index, name)
    content_type = obj.get("datacontenttype") if isinstance(obj.get("datacontenttype"), str) else None
    kind = message.WhichOneof("data")
    if kind == "text_data":
        obj["data"] = (
            _json(message.text_data, index)
            if is_json_media_type(content_type)
            else _without_nul(message.text_data, index, "data")
        )
    elif kind == "binary_data":
        raw = message.binary_data
        if content_type and is_json_media_type(content_type):
            obj["data"] = _json(raw, index)
        elif content_type and content_type.split(";", 1)[0].strip().lower().startswith("text/"):
            try:
                obj["data"] = _without_nul(raw.decode("utf-8"), index, "data")
            except UnicodeDecodeError:
                raise InvalidEvent(
                    f"{_where(index, 'data')}: text data is not valid UTF-8", attribute=_where(index, "data")
                ) from None
        else:
            obj["data_base64"] = base64.b64encode(raw).decode("ascii")
    elif kind == "proto_data":
        raise InvalidEvent(
            f"{_where(index, 'data')}: proto_data is not stored; send the message's bytes as binary_data "
            "with its datacontenttype (e.g. application/protobuf) and dataschema",
            attribute=_where(index, "data"),
        )
    return from_structured(obj, index)


def new_events(messages: Sequence[ce.CloudEvent]) -> list[NewEvent]:
    if not messages:
        raise InvalidRequest("events: at least one event is required", field="events")
    if len(messages) > settings.MAX_BATCH_EVENTS:
        raise InvalidRequest(
            f"a batch holds at most {settings.MAX_BATCH_EVENTS} events, got {len(messages)}",
            limit=settings.MAX_BATCH_EVENTS,
        )
    return [new_event(message, index) for index, message in enumerate(messages)]


def expected_version(request: Any) -> str:
    which = request.WhichOneof("expected")
    if which is None:
        return services.ANY
    if which == "expected_state":
        if request.expected_state not in _EXPECTED_STATES:
            raise InvalidRequest(
                f"expected_state {request.expected_state} is not defined", field="expected_state"
            )
        return _EXPECTED_STATES[request.expected_state]
    if request.expected_version < 0:
        raise InvalidRequest(
            f"expected_version must be >= 0, got {request.expected_version}", field="expected_version"
        )
    return str(request.expected_version)


def text(value: str, name: str, *, required: bool = False) -> str:
    if required and not value:
        raise InvalidRequest(f"{name} is required", field=name)
    if "\x00" in value or len(value) > 2048:
        raise InvalidRequest(f"{name} must be at most 2048 characters without NUL", field=name)
    return value


def optional_text(message: Any, name: str) -> str | None:
    return text(getattr(message, name), name) if message.HasField(name) else None


def limit(value: int, name: str = "limit", default: int | None = None) -> int:
    if value == 0:
        return default or settings.PAGE_SIZE_DEFAULT
    if not 1 <= value <= settings.PAGE_SIZE_MAX:
        raise InvalidRequest(
            f"{name} must be between 1 and {settings.PAGE_SIZE_MAX}, got {value}", field=name
        )
    return value


def non_negative(value: int, name: str) -> int:
    if value < 0:
        raise InvalidRequest(f"{name} must be >= 0, got {value}", field=name)
    return value


def moment(timestamp: Timestamp, name: str) -> datetime:
    try:
        return timestamp.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidRequest(f"{name} is not a valid timestamp: {exc}", field=name) from None


def event_filter(message: pb.EventFilter) -> selectors.EventFilter:
    types = [text(value, "filter.types", required=True) for value in message.types]
    selectors.check_type_patterns(types, "filter.types")
    names = (*selectors.EventFilter.EQUALITY, "category")
    return selectors.EventFilter(
        types=types,
        since=moment(message.since, "filter.since") if message.HasField("since") else None,
        until=moment(message.until, "filter.until") if message.HasField("until") else None,
        **{name: optional_text(message, name) for name in names},
    )


def json_text(raw: str, name: str) -> Any:
    try:
        return loads_strict(raw, max_depth=settings.MAX_JSON_DEPTH)
    except JSONError as exc:
        raise InvalidRequest(f"{name}: {exc}", field=name) from None


# ---- out ---------------------------------------------------------------------------------------


def timestamp(moment_: datetime | None) -> Timestamp | None:
    if moment_ is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment_)
    return stamp


def _set_attribute(target: ce.CloudEvent.CloudEventAttributeValue, name: str, value: Any) -> None:
    if isinstance(value, datetime):
        target.ce_timestamp.FromDatetime(value)
    elif isinstance(value, bool):
        target.ce_boolean = value
    elif isinstance(value, int):
        if -INT32 <= value < INT32 and name not in ("version", "position"):
            target.ce_integer = value
        else:
            target.ce_string = str(value)
    elif name == "dataschema":
        target.ce_uri = value
    else:
        target.ce_string = str(value)


def recorded(event: dict[str, Any]) -> pb.RecordedEvent:
    """A CloudEvent as rendered by ``events.selectors.to_cloudevent``, as a ``RecordedEvent``."""
    message = ce.CloudEvent(
        id=event["id"], source=event["source"], spec_version=event["specversion"], type=event["type"]
    )
    for name, value in event.items():
        if name in _CORE or name in DATA_KEYS:
            continue
        _set_attribute(message.attributes[name], name, value)
    if "data_base64" in event:
        message.binary_data = base64.b64decode(event["data_base64"])
    elif "data" in event:
        raw = orjson.dumps(event["data"])  # the stored JSON text (an orjson.Fragment) as is
        content_type = event.get("datacontenttype")
        if content_type is None or is_json_media_type(content_type):
            message.text_data = raw.decode()
        else:
            value = orjson.loads(raw)
            message.text_data = value if isinstance(value, str) else raw.decode()
    return pb.RecordedEvent(
        event=message,
        stream=event["stream"],
        version=event["version"],
        position=event["position"],
        recorded_time=timestamp(event["recordedtime"]),
    )


def append_response(result: services.AppendResult) -> pb.AppendResponse:
    return pb.AppendResponse(
        events=[
            pb.AppendedEvent(
                id=item.event.id,
                source=item.event.source,
                stream=item.stream,
                version=item.version,
                position=item.position,
                recorded_time=timestamp(item.recordedtime),
                duplicate=item.duplicate,
            )
            for item in result.events
        ],
        duplicate=result.duplicate,
        last_position=result.last_position,
    )


def stream_info(values: dict[str, Any]) -> pb.StreamInfo:
    """``streams.services.stream_as_dict`` as a ``StreamInfo``."""
    return pb.StreamInfo(
        name=values["name"],
        category=values["category"],
        last_version=values["last_version"],
        event_count=values["event_count"],
        last_position=values["last_position"],
        created_at=timestamp(values["created_at"]),
        last_event_at=timestamp(values["last_event_at"]),
        deleted=values["deleted"],
        deleted_at=timestamp(values["deleted_at"]),
        max_age=values["max_age"],
        max_count=values["max_count"],
        metadata_json=orjson.dumps(values["metadata"]).decode(),
    )


def snapshot(values: dict[str, Any]) -> pb.Snapshot:
    """``snapshots.selectors.snapshot_as_dict`` as a ``Snapshot``."""
    return pb.Snapshot(
        stream=values["stream"],
        version=values["version"],
        state_json=orjson.dumps(values["state"]).decode(),
        type=values["type"] or "",
        created_at=timestamp(values["created_at"]),
    )
