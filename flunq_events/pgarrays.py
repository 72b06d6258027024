"""One-dimensional arrays in PostgreSQL's binary format, for parameters sent as bytes.

A batch append sends each attribute of its events as one array (``events.services``). In binary
form PostgreSQL reads each element by its length, with no text to scan for quotes, escapes and
delimiters; a batch's attributes as JSON took about a third of the server's time of the append
to parse (docs/benchmarks.md, finding 21). The format (``array_recv`` in PostgreSQL's
``arrayfuncs.c``):

    int32 dimensions (1) | int32 has NULLs (0 or 1) | int32 element type OID |
    int32 length | int32 lower bound (1) | each element: int32 byte length (-1: NULL), its bytes

Elements are the element type's own binary form: for ``text`` and ``json`` the UTF-8 text, for
``bytea`` the bytes, for ``int4`` four bytes big-endian. PostgreSQL checks the element type against
the parameter's type and validates each element as its receive function does (UTF-8, JSON).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

TEXT = 25
JSON = 114
BYTEA = 17
INT4 = 23

_HEADER = struct.Struct(">iiiii")
_LENGTH = struct.Struct(">i")
_NULL = _LENGTH.pack(-1)


def bytes_array(values: Sequence[bytes | None], oid: int) -> bytes:
    """An array of elements of type ``oid`` already in its binary form (``None``: NULL)."""
    parts = [_HEADER.pack(1, 1 if None in values else 0, oid, len(values), 1)]
    append = parts.append
    for value in values:
        if value is None:
            append(_NULL)
        else:
            append(_LENGTH.pack(len(value)))
            append(value)
    return b"".join(parts)


def text_array(values: Sequence[str | None], oid: int = TEXT) -> bytes:
    """An array of ``text`` (or of another type whose binary form is its text, such as ``json``)."""
    first = values[0] if values else None
    if first is not None and values.count(first) == len(values):
        # One value for every element (a batch's source, type or execution, often): its bytes
        # repeated, at a fortieth of the cost of the loop for 100 elements.
        element = first.encode()
        return _HEADER.pack(1, 0, oid, len(values), 1) + (_LENGTH.pack(len(element)) + element) * len(values)
    return bytes_array([None if value is None else value.encode() for value in values], oid)


def int4_array(values: Sequence[int]) -> bytes:
    """An array of ``int4`` without NULLs."""
    count = len(values)
    lengths_and_values = [4] * (2 * count)
    lengths_and_values[1::2] = values
    return struct.pack(f">5i{2 * count}i", 1, 0, INT4, count, 1, *lengths_and_values)
