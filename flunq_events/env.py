"""Read settings from the environment, refusing bad values with a message naming the variable.

Every setting of the service comes through these helpers (see ``settings.py``), so a typo in a
deployment stops the start with ``ImproperlyConfigured: PORT: expected an integer, got 'eighty'``
instead of failing later in some request.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from flunq_events.numbers import is_digits

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def _fail(name: str, expected: str, value: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name}: expected {expected}, got {value!r}")


def env_str(name: str, default: str | None = None) -> str | None:
    value = _raw(name)
    return default if value is None else value


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise _fail(name, "an integer", value) from None
    if minimum is not None and number < minimum:
        raise _fail(name, f"an integer >= {minimum}", value)
    if maximum is not None and number > maximum:
        raise _fail(name, f"an integer <= {maximum}", value)
    return number


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise _fail(name, "a number", value) from None
    if number != number or number < minimum:  # NaN compares unequal to itself
        raise _fail(name, f"a number >= {minimum}", value)
    return number


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise _fail(name, "true or false", value)


def env_list(name: str, default: Iterable[str] = ()) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choices(name: str, choices: Iterable[str], default: Iterable[str] = ()) -> list[str]:
    """A comma-separated list whose every item must be one of ``choices``."""
    allowed = list(choices)
    items = [item.lower() for item in env_list(name, default)]
    for item in items:
        if item not in allowed:
            raise _fail(name, f"a comma-separated list of {'|'.join(allowed)}", os.environ[name])
    return items


def env_choice(name: str, choices: Iterable[str], default: str) -> str:
    allowed = list(choices)
    value = _raw(name)
    if value is None:
        return default
    if value.upper() in allowed:
        return value.upper()
    if value.lower() in allowed:
        return value.lower()
    raise _fail(name, f"one of {'|'.join(allowed)}", value)


def env_url(name: str, default: str | None, schemes: Iterable[str]) -> str | None:
    value = _raw(name)
    if value is None:
        return default
    allowed = list(schemes)
    parts = urlsplit(value)
    if parts.scheme not in allowed or not parts.hostname:
        raise _fail(name, f"a URL with scheme {'|'.join(allowed)} and a host", value)
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise _fail(name, "a URL with a valid port", value) from None
    return value


def env_hostports(name: str, default: str | None) -> list[str]:
    """``host:port[,host:port...]`` as used by ``KAFKA_BROKERS``."""
    value = _raw(name) or default
    if value is None:
        return []
    result = []
    for item in value.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not host or not is_digits(port, 5) or not 0 < int(port) < 65536:
            raise _fail(name, "a comma-separated list of host:port", value)
        result.append(f"{host}:{port}")
    return result
