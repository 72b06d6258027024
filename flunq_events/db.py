"""Plain psycopg connections to the service's database, for work outside Django's ORM.

LISTEN loops, the commit notifier and benchmarks need a connection of their own (not Django's
per-thread one); this builds it from the same ``DATABASES["default"]`` settings.
"""

from __future__ import annotations

import psycopg
from django.conf import settings


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
