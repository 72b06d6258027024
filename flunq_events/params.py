"""Query parameters, checked: a bad value is a 400 that names the parameter and what it expects."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings

from events.cloudevents import parse_time
from flunq_events.errors import InvalidRequest

# ASCII digits only (flunq_events.numbers says why).
INTEGER = re.compile(r"-?[0-9]{1,19}")


def reject_unknown(params, allowed: Iterable[str]) -> None:
    allowed = set(allowed)
    unknown = sorted(set(params.keys()) - allowed)
    if unknown:
        raise InvalidRequest(
            f"unknown query parameter(s): {', '.join(unknown)}",
            unknown=unknown,
            allowed=sorted(allowed),
        )


def integer(params, name: str, default: int | None = None, *, minimum: int = 0,
            maximum: int = 2**63 - 1) -> int | None:  # fmt: skip
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not INTEGER.fullmatch(raw):
        raise InvalidRequest(f"{name} must be an integer, got {raw[:40]!r}", parameter=name)
    value = int(raw)
    if not minimum <= value <= maximum:
        raise InvalidRequest(f"{name} must be between {minimum} and {maximum}, got {value}", parameter=name)
    return value


def limit(params) -> int:
    return integer(params, "limit", settings.PAGE_SIZE_DEFAULT, minimum=1, maximum=settings.PAGE_SIZE_MAX)


def moment(params, name: str) -> datetime | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_time(raw, name)
    except ValueError as exc:
        raise InvalidRequest(str(exc), parameter=name) from None


def text(params, name: str) -> str | None:
    raw = params.get(name)
    if raw is None:
        return None
    if "\x00" in raw or len(raw) > 2048:
        raise InvalidRequest(f"{name} must be at most 2048 characters without NUL", parameter=name)
    return raw


def boolean(params, name: str, default: bool = False) -> bool:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise InvalidRequest(f"{name} must be true or false, got {raw[:40]!r}", parameter=name)
