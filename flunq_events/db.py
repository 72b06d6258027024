"""Plain psycopg connections to the service's database, for work outside Django's ORM.

LISTEN loops, the commit notifier and benchmarks need a connection of their own (not Django's
per-thread one); this builds it from the same ``DATABASES["default"]`` settings. ``rows`` runs the
log's hot statements on Django's own connection, past its cursor.
"""

from __future__ import annotations

import functools

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections


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


def rows(sql: str, params: list | tuple) -> list[tuple]:
    """The rows of one statement on Django's connection (in its transaction, if any), through
    psycopg directly: server-side parameters, a prepared statement per query shape
    (``DB_PREPARE``) and results in binary, so timestamps are built in C. Django's cursor quotes
    parameters into new SQL text each time (planned anew: as long as reading a page of events) and
    parses timestamps in Python. Errors come as Django's database errors."""
    wrapper = connections[DEFAULT_DB_ALIAS]  # once: each access through ``connection`` costs ~4 us
    wrapper.ensure_connection()
    with wrapper.wrap_database_errors, psycopg.Cursor(wrapper.connection) as cursor:
        return cursor.execute(sql, params, binary=True, prepare=settings.DB_PREPARE).fetchall()


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
