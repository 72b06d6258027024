"""CloudEvents 1.0 in and out: parse the three HTTP modes, normalise, derive the stream.

Input: ``from_structured`` (one JSON object), ``from_binary`` (``ce-*`` headers + body). Each
returns a ``NewEvent`` or raises ``InvalidEvent`` naming the attribute (``/0/type`` in a batch).
Output: ``events.selectors`` renders stored rows as CloudEvents with the server-assigned attributes
``stream``, ``version``, ``position`` and ``recordedtime`` as extensions.

Stream rule (``derive_stream``): an event with ``executionid`` goes to ``execution-{executionid}``,
else with ``workflowid`` to ``workflow-{workflowid}``, else to the type's category: the type without
its last dot-segment and without a leading ``io.flunq.`` (``task.completed`` -> ``task``).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from flunq_events.errors import InvalidEvent
from flunq_events.jsonutil import INT64_MAX, INT64_MIN

REQUIRED = ("id", "source", "specversion", "type")
OPTIONAL = ("subject", "time", "datacontenttype", "dataschema")
FLUNQ_EXTENSIONS = ("tenantid", "workflowid", "executionid", "taskid", "correlationid", "causationid")
SERVER_ASSIGNED = ("stream", "version", "position", "recordedtime")
DATA_KEYS = ("data", "data_base64")

ATTRIBUTE_NAME = re.compile(r"^[a-z0-9]{1,64}\Z")
STREAM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,199}\Z")
MAX_ATTRIBUTE_LENGTH = 2048
MAX_EXTENSIONS = 50


@dataclass(slots=True)
class NewEvent:
    """A validated, normalised event that is not stored yet."""

    id: str
    source: str
    type: str
    specversion: str = "1.0"
    subject: str | None = None
    time: str | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None
    data: Any = None
    has_data: bool = False
    data_base64: str | None = None
    tenantid: str | None = None
    workflowid: str | None = None
    executionid: str | None = None
    taskid: str | None = None
    correlationid: str | None = None
    causationid: str | None = None
    extensions: dict[str, Any] = field(default_factory=dict)

    def attributes(self) -> dict[str, Any]:
        """The CloudEvent as the client gave it (normalised), without server attributes."""
        return self._add_attributes({})

    def row(self, stream: str) -> dict[str, Any]:
        """What the append function in the database stores for this event (absent = NULL)."""
        row = self._add_attributes({"stream": stream})
        if self.extensions:  # out of the row's columns: one may be named like one (`extensions`)
            for name in self.extensions:
                del row[name]
            row["extensions"] = self.extensions
        return row

    def _add_attributes(self, out: dict[str, Any]) -> dict[str, Any]:
        # Into the dict given, so that ``row`` builds one dict rather than copying another. One `if`
        # per attribute of OPTIONAL and FLUNQ_EXTENSIONS, in their order, rather than a loop with
        # getattr: this runs for every event appended.
        out["specversion"] = self.specversion
        out["id"] = self.id
        out["source"] = self.source
        out["type"] = self.type
        if self.subject is not None:
            out["subject"] = self.subject
        if self.time is not None:
            out["time"] = self.time
        if self.datacontenttype is not None:
            out["datacontenttype"] = self.datacontenttype
        if self.dataschema is not None:
            out["dataschema"] = self.dataschema
        if self.tenantid is not None:
            out["tenantid"] = self.tenantid
        if self.workflowid is not None:
            out["workflowid"] = self.workflowid
        if self.executionid is not None:
            out["executionid"] = self.executionid
        if self.taskid is not None:
            out["taskid"] = self.taskid
        if self.correlationid is not None:
            out["correlationid"] = self.correlationid
        if self.causationid is not None:
            out["causationid"] = self.causationid
        out.update(self.extensions)
        if self.data_base64 is not None:
            out["data_base64"] = self.data_base64
        elif self.has_data:
            out["data"] = self.data
        return out


def _where(index: int | None, name: str) -> str:
    return f"/{index}/{name}" if index is not None else f"/{name}"


def _invalid(index: int | None, name: str, message: str) -> InvalidEvent:
    return InvalidEvent(f"{_where(index, name)}: {message}", attribute=_where(index, name))


def _string(value: Any, index: int | None, name: str, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise _invalid(index, name, "required CloudEvents attribute is missing")
        return None
    if not isinstance(value, str):
        raise _invalid(index, name, f"must be a string, got {type(value).__name__}")
    if "\x00" in value:
        raise _invalid(index, name, "contains \\u0000, which cannot be stored")
    if required and not value:
        raise _invalid(index, name, "must not be empty")
    if len(value) > MAX_ATTRIBUTE_LENGTH:
        raise _invalid(index, name, f"longer than {MAX_ATTRIBUTE_LENGTH} characters")
    return value


# ASCII digits ([0-9], not \d, which takes any script's digits).
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def parse_time(value: str, where: str) -> datetime:
    """RFC 3339 with an offset; raises ValueError with a message for the client."""
    text = value.strip()
    match = _RFC3339.fullmatch(text)
    if not match:
        raise ValueError(f"{where}: {value!r} is not an RFC 3339 timestamp such as 2026-01-31T12:00:00Z")
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    # fromisoformat takes at most 6 fractional digits; RFC 3339 allows more.
    if match[1] and len(match[1]) > 7:
        text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not a valid date and time") from None
    try:
        moment.astimezone(UTC)  # 9999-12-31T23:59:59-01:00 is past the last year datetime holds
    except OverflowError:
        raise ValueError(f"{where}: {value!r} is outside the years 1 to 9999 in UTC") from None
    return moment


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _extension_value(value: Any, index: int | None, name: str) -> Any:
    # CloudEvents types: Boolean, Integer, String (URI, Timestamp, Binary travel as strings).
    if isinstance(value, str):
        if len(value) > MAX_ATTRIBUTE_LENGTH:
            raise _invalid(index, name, f"longer than {MAX_ATTRIBUTE_LENGTH} characters")
        if "\x00" in value:
            raise _invalid(index, name, "contains \\u0000, which cannot be stored")
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise _invalid(index, name, "integer outside the signed 64-bit range")
        return value
    raise _invalid(
        index, name, f"extension attributes must be a string, integer or boolean, got {type(value).__name__}"
    )


_OPTIONAL_STRINGS = ("subject", "datacontenttype", "dataschema", *FLUNQ_EXTENSIONS)
_STRINGS = frozenset(REQUIRED + _OPTIONAL_STRINGS)
_KNOWN = frozenset(REQUIRED + OPTIONAL + FLUNQ_EXTENSIONS + DATA_KEYS)


def _plain_strings(values: dict[str, Any]) -> bool:
    """Whether the string attributes pass ``_check_strings``: the usual case, checked at once.

    ``False`` sends the event through ``_check_strings``, which names the attribute at fault (or
    takes it after all: a subclass of ``str`` is not ``str`` here).
    """
    if values.get("specversion") != "1.0":
        return False
    if not (values.get("id") and values.get("source") and values.get("type")):  # missing or empty
        return False
    for name, value in values.items():
        if name not in _STRINGS:
            continue
        if type(value) is not str or "\x00" in value or len(value) > MAX_ATTRIBUTE_LENGTH:
            return False
    return True


def _check_strings(values: dict[str, Any], index: int | None) -> None:
    """The string attributes one by one: raises ``InvalidEvent`` naming the first one at fault."""
    for name in ("id", "source", "type", "specversion"):
        _string(values.get(name), index, name, required=True)
    if values["specversion"] != "1.0":
        raise _invalid(index, "specversion", f"only '1.0' is supported, got {values['specversion']!r}")
    for name in _OPTIONAL_STRINGS:
        _string(values.get(name), index, name)


def from_structured(obj: Any, index: int | None = None) -> NewEvent:
    """One event in structured mode (a JSON object)."""
    if not isinstance(obj, dict):
        where = f"/{index}" if index is not None else "/"
        raise InvalidEvent(f"{where}: a CloudEvent must be a JSON object", attribute=where)
    # null = absent (CloudEvents JSON); an object without nulls, the usual, needs no copy.
    values = obj if None not in obj.values() else {k: v for k, v in obj.items() if v is not None}
    # Other names than the known ones are extension attributes, or server-assigned ones (refused).
    extended = not values.keys() <= _KNOWN
    if extended:
        for name in SERVER_ASSIGNED:
            if name in values:
                raise _invalid(index, name, "is assigned by the server and cannot be set")
    if not _plain_strings(values):
        _check_strings(values, index)
    event = NewEvent(values["id"], values["source"], values["type"], values["specversion"])
    for name in _OPTIONAL_STRINGS:
        value = values.get(name)
        if value is not None:
            setattr(event, name, value)
    if event.dataschema is not None:
        try:
            urlsplit(event.dataschema)
        except ValueError:
            raise _invalid(index, "dataschema", "is not a valid URI") from None
    if "time" in values:
        moment = _string(values["time"], index, "time")
        try:
            event.time = format_time(parse_time(moment, _where(index, "time")))
        except ValueError as exc:
            raise InvalidEvent(str(exc), attribute=_where(index, "time")) from None
    if "data_base64" in values:
        if "data" in values:
            raise _invalid(index, "data_base64", "give either data or data_base64, not both")
        encoded = values["data_base64"]  # the data: bounded by the body, not by an attribute's length
        if not isinstance(encoded, str):
            raise _invalid(index, "data_base64", f"must be a string, got {type(encoded).__name__}")
        try:
            base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise _invalid(index, "data_base64", "is not valid base64") from None
        event.data_base64 = encoded
    elif "data" in values:
        event.data, event.has_data = values["data"], True
    if extended:
        event.extensions = _extensions(values, index)
    return event


def _extensions(values: dict[str, Any], index: int | None) -> dict[str, Any]:
    extensions = {}
    for name, value in values.items():
        if name in _KNOWN:
            continue
        if not ATTRIBUTE_NAME.match(name):
            raise _invalid(index, name, "attribute names are lowercase letters and digits only (CloudEvents)")
        extensions[name] = _extension_value(value, index, name)
    if len(extensions) > MAX_EXTENSIONS:
        raise _invalid(index, "extensions", f"more than {MAX_EXTENSIONS} extension attributes")
    return extensions


def is_json_media_type(content_type: str | None) -> bool:
    if not content_type:
        return True  # CloudEvents: absent datacontenttype means JSON
    essence = content_type.split(";", 1)[0].strip().lower()
    return essence == "application/json" or essence.endswith("+json") or essence == "text/json"


def from_binary(headers: dict[str, str], body: bytes, content_type: str | None, loads) -> NewEvent:
    """One event in binary mode: attributes in ``ce-*`` headers, the body is the data.

    ``headers`` maps lowercase attribute names (without ``ce-``) to raw header values; ``loads``
    is the strict JSON decoder for a JSON body.
    """
    for name in DATA_KEYS:
        if name in headers:
            raise InvalidEvent(f"ce-{name}: in binary mode the body is the data", attribute=f"/{name}")
    obj: dict[str, Any] = {name: unquote(value) for name, value in headers.items()}
    if content_type:
        obj["datacontenttype"] = content_type
    if body:
        if is_json_media_type(content_type):
            obj["data"] = loads(body)
        elif content_type.split(";", 1)[0].strip().lower().startswith("text/"):
            try:
                obj["data"] = body.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidEvent("the text body is not valid UTF-8", attribute="/data") from None
            if "\x00" in obj["data"]:
                raise InvalidEvent(
                    "the text body contains \\u0000, which cannot be stored", attribute="/data"
                )
        else:
            obj["data_base64"] = base64.b64encode(body).decode("ascii")
    return from_structured(obj)


def category_of_type(event_type: str) -> str:
    name = event_type.removeprefix("io.flunq.")
    head, dot, _ = name.rpartition(".")
    return head if dot and head else name


def derive_stream(event: NewEvent) -> str:
    if event.executionid:
        stream = f"execution-{event.executionid}"
    elif event.workflowid:
        stream = f"workflow-{event.workflowid}"
    else:
        stream = category_of_type(event.type)
    check_stream_name(stream, derived_from=event)
    return stream


def check_stream_name(name: str, derived_from: NewEvent | None = None) -> str:
    if not STREAM_NAME.match(name):
        origin = f" (derived from event {derived_from.id!r})" if derived_from else ""
        raise InvalidEvent(
            f"stream name {name[:80]!r}{origin} must be 1-200 characters of letters, digits and ._:@+=- "
            "starting with a letter or digit",
            attribute="/stream",
        )
    return name
