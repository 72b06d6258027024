"""Events as the relay reads them from the log and hands them to a backend.

``read_batch`` reads after a checkpoint up to the safe horizon (``flunq_horizon()``, see
``events/horizon.py``), so the relay never passes an event that a transaction still in flight
will commit later with a lower position.

PostgreSQL renders each event in the page query, in the content modes the backend asks for, so
the relay builds no dict per event and encodes nothing twice:

- binary mode (Redis fields, Kafka headers and value): ``fields``, the CloudEvent's attributes as
  text (``name, value, name, value, ...``, times in RFC 3339 with ``Z``), and ``data``, the data
  as stored: JSON text, or the decoded bytes of ``data_base64``;
- structured mode (NATS): the CloudEvent in JSON with ``data`` inline
  (``application/cloudevents+json``).

Both renderings follow ``events.selectors.to_cloudevent``: the same attributes in the same order
(server extensions ``stream``, ``version``, ``position``, ``recordedtime`` after the others), the
JSON as ``orjson`` writes that dict (times with ``+00:00``, 6 fractional digits unless zero).
Extension attributes are strings, integers or booleans (``events.cloudevents`` refuses others).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from django.db import connection

# Optional attributes of to_cloudevent after "time", in its order (the flunq ones included).
_OPTIONAL = ("datacontenttype", "dataschema", "tenantid", "workflowid", "executionid", "taskid",
             "correlationid", "causationid")  # fmt: skip


def _rfc3339(column: str) -> str:
    """``column`` (timestamptz) as Python's ``isoformat()`` in UTC writes it, without the offset.

    isoformat() leaves out a zero fraction; ".000000" cannot occur anywhere else in the text.
    """
    return f"replace(to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '.000000', '')"


def _json_member(name: str) -> str:
    return f"',\"{name}\":' || to_json({name})"


def _text_pair(name: str) -> str:
    return f"CASE WHEN {name} IS NOT NULL THEN ARRAY['{name}', {name}] END"


FIELDS_SQL = " || ".join(
    [
        """ARRAY['specversion', specversion, 'id', id, 'source', source, 'type', "type"]""",
        _text_pair("subject"),
        f"""CASE WHEN "time" IS NOT NULL THEN ARRAY['time', {_rfc3339('"time"')} || 'Z'] END""",
        *(_text_pair(name) for name in _OPTIONAL),
        # jsonb_each_text: strings as they are, integers in digits, booleans as true/false.
        "CASE WHEN extensions <> '{}' THEN ARRAY(SELECT item FROM jsonb_each_text(extensions) "
        "WITH ORDINALITY AS e(key, value, n), LATERAL (VALUES (1, key), (2, value)) AS i(k, item) "
        "ORDER BY n, k) END",
        f"""ARRAY['stream', stream, 'version', "version"::text, 'position', "position"::text, """
        f"""'recordedtime', {_rfc3339("recordedtime")} || 'Z']""",
    ]
)

# One concat() (it skips NULLs: absent attributes) rather than a chain of ||, which copies the
# growing text at every step.
STRUCTURED_SQL = (
    "convert_to(concat("
    + ", ".join(
        [
            """'{"specversion":', to_json(specversion), ',"id":', to_json(id), ',"source":', to_json(source)""",
            """',"type":', to_json("type")""",
            _json_member("subject"),
            f"""',"time":"' || {_rfc3339('"time"')} || '+00:00"'""",
            *(_json_member(name) for name in _OPTIONAL),
            "CASE WHEN extensions <> '{}' THEN (SELECT string_agg(',' || to_json(key) || ':' || value, '' "
            "ORDER BY n) FROM jsonb_each(extensions) WITH ORDINALITY AS e(key, value, n)) END",
            """',"stream":', to_json(stream), ',"version":', "version", ',"position":', "position" """,
            f"""',"recordedtime":"', {_rfc3339("recordedtime")}, '+00:00"'""",
            # encode(..., 'base64') breaks lines every 76 characters; JSON wants one line.
            """CASE WHEN data_base64 IS NOT NULL THEN ',"data_base64":"' """
            """|| translate(encode(data_base64, 'base64'), E'\\n', '') || '"' """
            """WHEN data IS NOT NULL THEN ',"data":' || data::text END""",
            "'}'",
        ]
    )
    + "), 'UTF8')"
)


@dataclass(slots=True)
class RelayEvent:
    position: int
    id: str
    source: str
    type: str
    stream: str
    # Binary mode, when read: the data (None: the event has none) and the attributes as text, name
    # and value in turn.
    data: bytes | None = None
    fields: list[str] | None = None
    # Structured mode, when read.
    json: bytes | None = None

    def structured(self) -> bytes:
        """The event in CloudEvents JSON format (``application/cloudevents+json``)."""
        if self.json is None:
            raise LookupError(f"position {self.position} was read without its structured mode")
        return self.json

    def attribute_pairs(self) -> zip:
        """(name, text) for every attribute, in order (Redis fields, Kafka headers)."""
        if self.fields is None:
            raise LookupError(f"position {self.position} was read without its binary mode")
        return zip(self.fields[::2], self.fields[1::2], strict=True)

    def attribute_text(self) -> dict[str, str]:
        """Every attribute as a string (for headers and Redis fields), times in RFC 3339."""
        return dict(self.attribute_pairs())


def _query(where: str, *, binary: bool, structured: bool) -> str:
    data = "coalesce(data_base64, convert_to(data::text, 'UTF8'))" if binary else "NULL::bytea"
    return (
        f'SELECT "position", id, source, "type", stream, {data}, '
        f"{FIELDS_SQL if binary else 'NULL::text[]'}, {STRUCTURED_SQL if structured else 'NULL::bytea'} "
        f"FROM {where}"
    )


def _fetch(sql: str, params: list, conn: psycopg.Connection | None) -> list[RelayEvent]:
    if conn is not None:
        rows = conn.cursor(binary=True).execute(sql, params).fetchall()
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
    return [RelayEvent(*row) for row in rows]


def read_batch(
    after: int,
    limit: int,
    conn: psycopg.Connection | None = None,
    *,
    binary: bool = True,
    structured: bool = True,
) -> list[RelayEvent]:
    """Events with ``after < position <= horizon``, in position order (one round trip).

    ``conn``: a psycopg connection of the relay's own, read in binary; without it, Django's
    connection. ``binary`` / ``structured``: the content modes to read (see the module).

    The next ``limit`` rows are taken from the primary key in order and then cut at the horizon:
    written with both bounds in one condition, the planner may not know the horizon and take a
    bitmap scan of everything after the checkpoint plus a sort, per page (a long backlog then
    costs its own length on every page).
    """
    where = (
        '(SELECT * FROM flunq_events WHERE "position" > %s ORDER BY "position" LIMIT %s) AS flunq_events '
        'WHERE "position" <= (SELECT flunq_horizon()) ORDER BY "position"'
    )
    return _fetch(_query(where, binary=binary, structured=structured), [after, limit], conn)


def with_structured(events: Sequence[RelayEvent], conn: psycopg.Connection | None = None) -> None:
    """Read the structured rendering of ``events`` that were read without it."""
    missing = {event.position: event for event in events if event.json is None}
    if not missing:
        return
    sql = _query('flunq_events WHERE "position" = ANY(%s)', binary=False, structured=True)
    for row in _fetch(sql, [list(missing)], conn):
        missing[row.position].json = row.json
