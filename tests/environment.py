"""Real servers for the test suite, chosen before Django reads its settings.

Loaded as a pytest plugin (``-p tests.environment`` in pyproject.toml) so it runs before
pytest-django loads the settings. PostgreSQL: ``DATABASE_URL`` when set, else the one on
127.0.0.1:5432 when it answers, else an embedded one started here for the run. Redis, NATS and
Kafka are resolved lazily by fixtures in ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import socket


def reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _database_url() -> str:
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    if reachable("127.0.0.1", 5432):
        return "postgresql://postgres@127.0.0.1:5432/postgres"
    from flunq_events.devservers import PostgresServer

    server = PostgresServer(settings={"fsync": "off"})  # data in its own temp dir, removed at exit
    server.start()
    globals()["_embedded_postgres"] = server  # kept alive for the run; stopped at exit
    return server.url


os.environ["DATABASE_URL"] = _database_url()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flunq_events.settings")
