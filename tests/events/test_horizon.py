"""The safe horizon: a global reader never skips an event that commits late with a lower position."""

from __future__ import annotations

import io
import threading
import time

import orjson
import psycopg
import pytest

from events import horizon, selectors, services
from tests.conftest import database_url_of_test_db
from tests.events.helpers import new_event

pytestmark = pytest.mark.django_db(transaction=True)


def open_append(stream: str) -> tuple[psycopg.Connection, int]:
    """Append on a separate connection and keep its transaction open; returns it and the position."""
    conn = psycopg.connect(database_url_of_test_db())
    row = new_event().row(stream)
    position = conn.execute(
        "SELECT o_position FROM flunq_append(%s::json)", [orjson.dumps([row]).decode()]
    ).fetchone()[0]
    return conn, position


def horizon_and_its_definition() -> tuple[int, int]:
    """``flunq_horizon()`` and, in the same snapshot, what it stands for: the highest position
    written by a transaction below the snapshot's xmin (read with a scan of every row)."""
    with psycopg.connect(database_url_of_test_db(), autocommit=True) as conn:
        return conn.execute(
            "SELECT flunq_horizon(), coalesce((SELECT max(position) FROM flunq_events "
            "WHERE xid < pg_snapshot_xmin(pg_current_snapshot())), 0)"
        ).fetchone()


def test_a_held_transaction_holds_back_every_later_position():
    before = horizon.current()
    held, low = open_append("held-1")
    try:
        later = services.append_one(new_event(), stream="other-1")
        assert later.position > low
        # The later event is committed, but the reader must not pass the held position.
        assert horizon.current() < low
        page = selectors.read_all(before, 100)
        assert [e["position"] for e in page.events] == []
        assert page.next_after < low
        held.commit()
        assert horizon.wait_for(later.position, timeout=5) >= later.position
        page = selectors.read_all(before, 100)
        assert [e["position"] for e in page.events] == [low, later.position]
    finally:
        held.close()


@pytest.mark.parametrize("committed_before", [0, 1, 37])
@pytest.mark.parametrize("committed_after", [3, 40, 300])
def test_the_horizon_is_found_however_many_appends_a_held_transaction_holds_back(
    committed_before, committed_after
):
    """flunq_horizon reads the newest rows first and searches the positions when none of them is
    below xmin: both ways give what the horizon stands for, with gaps in between."""
    first = [
        services.append_one(new_event(), stream=f"before-{n % 3}").position for n in range(committed_before)
    ]
    gone, _ = open_append("gone-3")
    gone.rollback()
    gone.close()
    held, low = open_append("held-3")
    try:
        later = services.append([new_event() for _ in range(committed_after)], stream="after-1")
        assert later.events[0].position > low
        found, meant = horizon_and_its_definition()
        assert found == meant == (first[-1] if first else 0)
    finally:
        held.commit()
        held.close()
    # The horizon is the cluster's: another database's open transaction can hold it back a while.
    horizon.wait_for(later.last_position, 60.0)
    found, meant = horizon_and_its_definition()
    assert found == meant == later.last_position


def test_a_rolled_back_append_leaves_a_gap_that_readers_pass():
    before = horizon.current()
    held, _low = open_append("gone-1")
    later = services.append_one(new_event(), stream="other-2")
    held.rollback()
    held.close()
    assert horizon.wait_for(later.position, timeout=5) >= later.position
    assert [e["position"] for e in selectors.read_all(before, 100).events] == [later.position]


def test_wait_for_returns_when_the_horizon_arrives():
    held, _low = open_append("held-2")
    later = services.append_one(new_event(), stream="other-3")
    timer = threading.Timer(0.2, held.commit)
    timer.start()
    try:
        started = time.monotonic()
        assert horizon.wait_for(later.position, timeout=10) >= later.position
        assert time.monotonic() - started < 10
    finally:
        timer.join()
        held.close()


def test_concurrent_writers_with_rollbacks_never_make_a_reader_skip():
    """8 writers (batches of 1-20, random rollbacks) against a reader following the cursor."""
    url = database_url_of_test_db()
    stop = threading.Event()
    committed: list[int] = []
    lock = threading.Lock()

    def writer(seed: int) -> None:
        import random

        rng = random.Random(seed)
        with psycopg.connect(url) as conn:
            while not stop.is_set():
                rows = [new_event().row(f"w{seed}-{rng.randint(0, 3)}") for _ in range(rng.randint(1, 20))]
                result = conn.execute(
                    "SELECT o_position FROM flunq_append(%s::json)", [orjson.dumps(rows).decode()]
                ).fetchall()
                time.sleep(rng.random() * 0.005)  # keep the transaction open a little
                if rng.random() < 0.2:
                    conn.rollback()
                else:
                    conn.commit()
                    with lock:
                        committed.extend(r[0] for r in result)

    start = horizon.current()
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    seen: list[int] = []
    after = start
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        found, meant = horizon_and_its_definition()
        assert found == meant
        page = selectors.read_all(after, 500)
        seen.extend(e["position"] for e in page.events)
        after = page.next_after
    stop.set()
    for thread in threads:
        thread.join()
    deadline = time.monotonic() + 30
    while True:  # drain what committed after the deadline
        page = selectors.read_all(after, 1000)
        if not page.events and page.horizon >= max(committed):
            break
        assert time.monotonic() < deadline, f"the horizon stopped at {page.horizon}"
        seen.extend(e["position"] for e in page.events)
        after = page.next_after
    assert seen == sorted(seen)
    assert sorted(seen) == sorted(committed)
    assert len(committed) > 500


def _as_if_restored_from_another_cluster() -> None:
    """What a logical dump restored into another cluster leaves: each event keeps the xid the
    other cluster gave it, here far above any this one has given."""
    with psycopg.connect(database_url_of_test_db(), autocommit=True) as conn, conn.transaction():
        conn.execute("ALTER TABLE flunq_events DISABLE TRIGGER flunq_events_append_only")
        conn.execute(
            "UPDATE flunq_events SET xid = (pg_current_xact_id()::text::bigint + 1000000000)::text::xid8"
        )
        conn.execute("ALTER TABLE flunq_events ENABLE TRIGGER flunq_events_append_only")


def test_events_restored_from_another_cluster_are_read_once_marked():
    from django.core.management import call_command

    restored = services.append([new_event() for _ in range(3)], stream="restored-1")
    _as_if_restored_from_another_cluster()
    assert horizon.current() == 0  # they look as if still being written: readers see nothing
    assert selectors.read_all(0, 10).events == []

    call_command("mark_restored_events", stdout=(out := io.StringIO()))
    assert out.getvalue().strip() == "3"
    assert horizon.current() == restored.last_position
    assert horizon_and_its_definition() == (restored.last_position, restored.last_position)
    later = services.append_one(new_event(), stream="restored-1")
    horizon.wait_for(later.position, timeout=5)
    page = selectors.read_all(0, 10)
    assert [(e["stream"], e["version"]) for e in page.events] == [("restored-1", v) for v in range(4)]
    call_command("mark_restored_events", stdout=(out := io.StringIO()))
    assert out.getvalue().strip() == "0"  # a second run marks nothing


def test_marking_restored_events_leaves_this_clusters_own_alone():
    """An event of this cluster committed after a transaction still in flight keeps its xid:
    given xid 1, it would put the horizon above the position that transaction holds."""
    held, low = open_append("held-2")
    try:
        later = services.append_one(new_event(), stream="own-1")
        with psycopg.connect(database_url_of_test_db(), autocommit=True) as conn:
            assert conn.execute("SELECT flunq_mark_restored_events()").fetchone() == (0,)
        assert horizon.current() < low < later.position
    finally:
        held.rollback()
        held.close()


def test_the_guard_lets_the_marking_change_the_xid_and_nothing_else():
    services.append_one(new_event(), stream="guarded-1")
    with psycopg.connect(database_url_of_test_db(), autocommit=True) as conn, conn.transaction():
        conn.execute("SELECT set_config('flunq.restoring', 'on', true)")
        with pytest.raises(psycopg.Error, match="append-only") as refused:
            conn.execute("UPDATE flunq_events SET type = 'other', xid = '1'")
        assert refused.value.sqlstate == "FQ000"


def test_the_end_of_the_log_counts_appends_still_in_flight():
    """Starts past the end of the log stop at it; one between the horizon and the end means what
    it says (moved back to the horizon, a feed would send again what the client has)."""
    from live.query import Start

    held, low = open_append("held-end")
    try:
        later = services.append_one(new_event(), stream="end-1")
        assert horizon.current() < low < later.position == horizon.log_end()
        assert Start("position", later.position).resolve() == later.position
        assert Start("position", later.position + 1000).resolve() == later.position
    finally:
        held.rollback()
        held.close()
