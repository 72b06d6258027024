"""Plain psycopg connections to the service's database, for work outside Django's ORM.

LISTEN loops, the commit notifier and benchmarks need a connection of their own (not Django's
per-thread one); this builds it from the same ``DATABASES["default"]`` settings.
"""

from __future__ import annotations

import functools

import psycopg
from django.conf import settings
from django.db import OperationalError


def conninfo() -> str:
    db = settings.DATABASES["default"]
    params = {
        "dbname": db["NAME"],
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": str(db["PORT"]) if db.get("PORT") else None,
    }
    # libpq options from DATABASE_URL (sslmode, options, ...); "pool" is Django's own.
    params.update({k: str(v) for k, v in db.get("OPTIONS", {}).items() if k != "pool"})
    return psycopg.conninfo.make_conninfo(**{k: v for k, v in params.items() if v})


def connect(*, autocommit: bool = True) -> psycopg.Connection:
    return psycopg.connect(conninfo(), autocommit=autocommit)


async def connect_async(*, autocommit: bool = True) -> psycopg.AsyncConnection:
    return await psycopg.AsyncConnection.connect(conninfo(), autocommit=autocommit)


def retry_on_deadlock(function):
    """Run ``function`` again (up to 3 times) when PostgreSQL chose its transaction as a deadlock
    victim. Lock orders are kept consistent where we can; this covers the rest (e.g. deleting a
    subscription while a consumer settles deliveries of it)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        for attempt in range(3):
            try:
                return function(*args, **kwargs)
            except OperationalError as exc:
                if getattr(exc.__cause__, "sqlstate", None) != "40P01" or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    return wrapper
