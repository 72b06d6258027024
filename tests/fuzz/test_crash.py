"""PostgreSQL dies (``-m immediate``) under concurrent appends and comes back.

On a PostgreSQL started for this test (never the machine's shared one): writers append through a
real server; PostgreSQL is stopped in immediate mode (no shutdown checkpoint, like a crash) while
they write, then started again on the same port and data. Afterwards:

- every append the client saw succeed is stored exactly once, at the position it was given;
- an append whose answer was lost is stored at most once, and resending it settles it;
- each stream's versions are dense and the global log reads back in position order;
- the same server process serves appends again, without a restart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import pytest

from flunq_events.devservers import PostgresServer

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parent.parent.parent
WRITERS = 4


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Writers:
    """Threads appending one event per request; they remember what the server acknowledged."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acked: dict[str, int] = {}  # event id -> position the server answered
        self.uncertain: dict[str, dict] = {}  # event id -> event whose answer was an error
        self.failures = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.write, args=(n,), daemon=True) for n in range(WRITERS)]

    def write(self, writer: int) -> None:
        with httpx.Client(timeout=10) as client:
            for index in range(1_000_000):
                if self.stop.is_set():
                    return
                event = {
                    "specversion": "1.0",
                    "id": f"w{writer}-{index}",
                    "source": "/crash-test",
                    "type": "crash.appended",
                    "executionid": f"crash{writer}",
                    "data": {"writer": writer, "index": index},
                }
                try:
                    response = client.post(f"{self.url}/api/v1/events", json=event)
                    ok = response.status_code in (200, 201)
                except httpx.HTTPError:
                    ok = False
                with self.lock:
                    if ok:
                        self.acked[event["id"]] = response.json()["position"]
                    else:
                        self.uncertain[event["id"]] = event
                        self.failures += 1
                if not ok:
                    time.sleep(0.05)  # a client's back-off; the server is failing anyway

    def count(self) -> tuple[int, int]:
        with self.lock:
            return len(self.acked), self.failures


@pytest.fixture
def own_postgres(tmp_path):
    server = PostgresServer(workdir=tmp_path / "pg", database="crash")
    server.start()
    env = {**os.environ, "DATABASE_URL": server.url}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    yield server
    server.close()


def test_acknowledged_appends_survive_an_immediate_stop(own_postgres, live_server_factory):
    server = live_server_factory(DATABASE_URL=own_postgres.url, AUTH_REQUIRED="false", LOG_LEVEL="ERROR")
    writers = Writers(server.url)
    for thread in writers.threads:
        thread.start()
    try:
        wait_until(lambda: writers.count()[0] >= 20, 60, "appends before the crash")
        own_postgres.stop("immediate")
        wait_until(lambda: writers.count()[1] >= WRITERS, 60, "appends failing while PostgreSQL is down")
        before_restart = writers.count()[0]
        own_postgres.start()
        # The same server process serves appends again.
        wait_until(lambda: writers.count()[0] >= before_restart + 20, 60, "appends after the restart")
    finally:
        writers.stop.set()
        for thread in writers.threads:
            thread.join(30)

    with psycopg.connect(own_postgres.url) as conn:
        rows = conn.execute(
            'SELECT id, "position", stream, "version" FROM flunq_events WHERE source = %s ORDER BY "position"',
            ["/crash-test"],
        ).fetchall()
    stored = Counter(row[0] for row in rows)
    positions = {row[0]: row[1] for row in rows}
    assert writers.acked and writers.uncertain
    lost = [event_id for event_id in writers.acked if stored[event_id] == 0]
    assert lost == [], f"{len(lost)} acknowledged appends lost"
    assert [event_id for event_id, n in stored.items() if n > 1] == []
    assert all(positions[event_id] == position for event_id, position in writers.acked.items())
    for writer in range(WRITERS):
        versions = [row[3] for row in rows if row[2] == f"execution-crash{writer}"]
        assert versions == list(range(len(versions)))

    # Resending what had no answer settles it: stored once, either way.
    with httpx.Client(timeout=10) as client:
        for event in writers.uncertain.values():
            response = client.post(f"{server.url}/api/v1/events", json=event)
            assert response.status_code in (200, 201), response.text
            if stored[event["id"]]:
                assert response.status_code == 200 and response.json()["position"] == positions[event["id"]]
        # The global log reads back every event once, in position order, through the service.
        seen, after = [], 0
        while True:
            page = client.get(f"{server.url}/api/v1/events", params={"after": after, "limit": 1000}).json()
            seen += [event["id"] for event in page["events"] if event["source"] == "/crash-test"]
            if not page["events"]:
                break
            after = page["next_after"]
    assert len(seen) == len(set(seen)) == len(set(writers.acked) | set(writers.uncertain))
    assert json.dumps(sorted(seen)) == json.dumps(sorted(set(writers.acked) | set(writers.uncertain)))
