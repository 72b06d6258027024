"""Strict JSON for request bodies: what PostgreSQL's ``jsonb`` and every consumer can hold.

``loads_strict`` refuses what the standard library would quietly accept: ``NaN``/``Infinity``,
integers outside signed 64 bits (other services decode them as int64), floats that overflow,
``\\u0000`` in strings or keys (``jsonb`` cannot store it), lone surrogates, and nesting deeper than
``MAX_JSON_DEPTH``. Each refusal is a ``JSONError`` whose message says what and where.
"""

from __future__ import annotations

import json
import math
from typing import Any

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


class JSONError(ValueError):
    """The body is not JSON the service accepts; the message is meant for the client."""


def _reject_constant(name: str) -> Any:
    raise JSONError(f"{name} is not valid JSON")


def _parse_int(text: str) -> int:
    # Checked on the digits first: int() of a 5000-digit string is slow and then refused anyway.
    if len(text.lstrip("-")) > 19 or not INT64_MIN <= int(text) <= INT64_MAX:
        raise JSONError(
            f"integer {text[:24]}{'...' if len(text) > 24 else ''} is outside the signed 64-bit range"
        )
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise JSONError(f"number {text[:24]} is too large")
    return value


_decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_parse_int, parse_float=_parse_float)


def loads_strict(raw: bytes | str, *, max_depth: int) -> Any:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONError(f"body is not valid UTF-8 (byte {exc.start})") from None
    try:
        value = _decoder.decode(raw)
    except JSONError:
        raise
    except RecursionError:
        raise JSONError(f"JSON nested deeper than {max_depth} levels") from None
    except json.JSONDecodeError as exc:
        raise JSONError(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:  # int() limits and similar
        raise JSONError(f"invalid JSON: {exc}") from None
    check_value(value, max_depth=max_depth)
    return value


def check_value(value: Any, *, max_depth: int, where: str = "") -> None:
    """Walk a decoded value (iteratively: the depth is what we are checking) for what jsonb refuses."""
    stack: list[tuple[Any, str, int]] = [(value, where, 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            _check_string(item, path)
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise JSONError(f"JSON nested deeper than {max_depth} levels at {path or '/'}")
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_string(key, path, key=True)
                    stack.append((child, f"{path}/{_escape(key)}", depth + 1))
            else:
                for index, child in enumerate(item):
                    stack.append((child, f"{path}/{index}", depth + 1))


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _check_string(text: str, path: str, key: bool = False) -> None:
    if "\x00" in text:
        what = f"a key in {path or '/'}" if key else f"the string at {path or '/'}"
        raise JSONError(f"{what} contains \\u0000, which cannot be stored")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        what = f"a key in {path or '/'}" if key else f"the string at {path or '/'}"
        raise JSONError(f"{what} contains a lone surrogate") from None


def _int_or_float(text: str) -> int | float:
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else float(text)


class StoredJSONDecoder(json.JSONDecoder):
    """Reads a ``jsonb`` column back as it was accepted. ``jsonb`` keeps a number as its digits, so a
    float written with an exponent (``1e20``) comes back as an integer (``100000000000000000000``)
    outside the signed 64 bits ``loads_strict`` admits, which other services cannot decode (and
    ``orjson`` refuses to write): such an integer can only have been a float, and is one again."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("parse_int", _int_or_float)
        super().__init__(*args, **kwargs)
