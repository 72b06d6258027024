"""Plain psycopg connections to the service's database, for work outside Django's ORM.

LISTEN loops, the commit notifier and benchmarks need a connection of their own (not Django's
per-thread one); this builds it from the same ``DATABASES["default"]`` settings. ``rows`` runs the
log's hot statements on Django's own connection, past its cursor; ``Statement`` runs the hottest
(one per event appended) past psycopg's cursor too.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections
from psycopg import pq
from psycopg.adapt import Transformer

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper


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


class Statement:
    """One hot statement, run on Django's connection through libpq itself (``psycopg.pq``).

    For the calls made once per event, where psycopg's cursor machinery (a cursor per call,
    parameter adaptation, the generator-driven wait) costs more CPU than the round trip itself:
    with 8 appending threads, 313 us of process CPU per single-event append through ``rows``
    against 203 us through this (``python -m bench.append_cpu``; docs/benchmarks.md, finding 14).
    Parameters are text (``str`` or ``None``) behind ``$1, $2, ...`` in ``sql``, unless
    ``param_formats`` says which are binary (1): those are given as ``bytes``, in the binary form of
    the type ``sql`` casts them to (``flunq_events.pgarrays``). The rows come back in binary and are
    loaded by psycopg's own loaders (timestamps built in C), kept per thread and connection
    (building them anew cost ~5 us a call).

    With ``DB_PREPARE`` the statement is prepared once per connection under ``name`` (again if the
    server has forgotten it, e.g. after ``DISCARD ALL``); without, it is sent whole each time.
    libpq's blocking calls release the interpreter lock while they wait, as psycopg's do. Errors
    come as Django's database errors, with psycopg's error (SQLSTATE, diagnostics) as the cause.
    """

    def __init__(self, name: str, sql: str, param_formats: Sequence[int] | None = None) -> None:
        self.name = name.encode()
        self.sql = sql.encode()
        self.param_formats = param_formats
        self._prepared_on: weakref.WeakSet[psycopg.Connection] = weakref.WeakSet()
        self._loaders = threading.local()  # .current: (connection, its Transformer), this thread's

    def rows(
        self, params: Sequence[str | bytes | None], wrapper: BaseDatabaseWrapper | None = None
    ) -> list[tuple]:
        """The rows, on ``wrapper`` (Django's connection of this thread, looked up when not given)."""
        if wrapper is None:
            wrapper = connections[DEFAULT_DB_ALIAS]
        if wrapper.connection is None:
            wrapper.ensure_connection()
        with wrapper.wrap_database_errors:
            connection = wrapper.connection
            values = [value.encode() if isinstance(value, str) else value for value in params]
            result = self._run(connection, values)
            if result.status != pq.ExecStatus.TUPLES_OK:
                raise psycopg.errors.error_from_result(result, encoding=connection.info.encoding)
            current = getattr(self._loaders, "current", None)
            if current is None or current[0] is not connection:
                current = self._loaders.current = (connection, Transformer(connection))
            loader = current[1]
            loader.set_pgresult(result)
            return loader.load_rows(0, result.ntuples, tuple)

    def _run(self, connection: psycopg.Connection, values: list[bytes | None]) -> pq.abc.PGresult:
        pgconn = connection.pgconn
        if not settings.DB_PREPARE:
            return pgconn.exec_params(
                self.sql, values, param_formats=self.param_formats, result_format=pq.Format.BINARY
            )
        if connection not in self._prepared_on:
            self._prepare(connection)
        result = pgconn.exec_prepared(
            self.name, values, param_formats=self.param_formats, result_format=pq.Format.BINARY
        )
        if result.error_field(pq.DiagnosticField.SQLSTATE) == b"26000":  # no such prepared statement
            self._prepared_on.discard(connection)
            # Again at once, unless the failure aborted the caller's transaction: then the next call.
            if pgconn.transaction_status == pq.TransactionStatus.IDLE:
                self._prepare(connection)
                result = pgconn.exec_prepared(
                    self.name, values, param_formats=self.param_formats, result_format=pq.Format.BINARY
                )
        return result

    def _prepare(self, connection: psycopg.Connection) -> None:
        result = connection.pgconn.prepare(self.name, self.sql)
        if result.status != pq.ExecStatus.COMMAND_OK:
            raise psycopg.errors.error_from_result(result, encoding=connection.info.encoding)
        self._prepared_on.add(connection)


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
