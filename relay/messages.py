"""Events as the relay reads them from the log and hands them to a backend.

``read_batch`` reads after a checkpoint up to the safe horizon (``flunq_horizon()``, see
``events/horizon.py``), so the relay never passes an event that a transaction still in flight
will commit later with a lower position.
Each row becomes a ``RelayEvent`` that carries both shapes the bindings need: the structured
CloudEvent (JSON with ``data`` inline) and the attributes + raw data body of binary mode.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg
from django.db import connection

from events.selectors import COLUMNS, to_cloudevent


@dataclass(slots=True)
class RelayEvent:
    position: int
    id: str
    source: str
    type: str
    stream: str
    recordedtime: datetime
    # The CloudEvent's attributes (server extensions included), without data.
    attributes: dict[str, Any]
    # The data as sent on the wire in binary mode: JSON text, or the decoded bytes of data_base64.
    data: bytes | None
    data_is_base64: bool
    _structured: bytes | None = None

    def structured(self) -> bytes:
        """The event in CloudEvents JSON format (``application/cloudevents+json``); computed once."""
        if self._structured is None:
            self._structured = self._render()
        return self._structured

    def _render(self) -> bytes:
        event = dict(self.attributes)
        if self.data is not None:
            if self.data_is_base64:
                event["data_base64"] = base64.b64encode(self.data).decode("ascii")
            else:
                event["data"] = orjson.Fragment(self.data)
        return orjson.dumps(event)

    def attribute_text(self) -> dict[str, str]:
        """Every attribute as a string (for headers and Redis fields), times in RFC 3339."""
        out = {}
        for name, value in self.attributes.items():
            if isinstance(value, str):
                out[name] = value
            elif isinstance(value, datetime):
                out[name] = value.isoformat().replace("+00:00", "Z")
            elif isinstance(value, bool):
                out[name] = "true" if value else "false"
            elif isinstance(value, int | float):
                out[name] = str(value)
            else:
                out[name] = orjson.dumps(value).decode()
        return out


def from_row(row: tuple) -> RelayEvent:
    data_text, data_base64 = row[11], row[12]
    attributes = to_cloudevent(row)
    attributes.pop("data", None)
    attributes.pop("data_base64", None)
    if data_base64 is not None:
        data, is_base64 = bytes(data_base64), True
    elif data_text is not None:
        data, is_base64 = data_text.encode(), False
    else:
        data, is_base64 = None, False
    return RelayEvent(
        position=row[0],
        id=row[3],
        source=row[4],
        type=row[6],
        stream=row[1],
        recordedtime=row[-1],
        attributes=attributes,
        data=data,
        data_is_base64=is_base64,
    )


def read_batch(after: int, limit: int, conn: psycopg.Connection | None = None) -> list[RelayEvent]:
    """Events with ``after < position <= horizon``, in position order (one round trip).

    ``conn``: a psycopg connection of the relay's own, read in binary (about twice as fast as
    through Django's cursor); without it, Django's connection.
    """
    sql = (
        f'SELECT {COLUMNS} FROM flunq_events WHERE "position" > %s '
        'AND "position" <= (SELECT flunq_horizon()) ORDER BY "position" LIMIT %s'
    )
    if conn is not None:
        rows = conn.cursor(binary=True).execute(sql, [after, limit]).fetchall()
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, [after, limit])
            rows = cursor.fetchall()
    return [from_row(row) for row in rows]
