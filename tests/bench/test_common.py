"""The benchmark helpers: percentiles, interleaving, concurrency, tables, databases, the no-op view."""

from __future__ import annotations

import os
import re
import time

import psycopg
import pytest

from bench import common


def test_percentile_by_nearest_rank():
    values = [float(n) for n in range(1, 101)]
    assert common.percentile(values, 50) == 50.0
    assert common.percentile(values, 99) == 99.0
    assert common.percentile(values, 100) == 100.0
    assert common.percentile([3.0], 99) == 3.0
    assert common.percentile([], 50) == 0.0


def test_interleave_alternates_contenders_round_by_round():
    order: list[str] = []

    def contender(name: str):
        def run() -> common.Sample:
            order.append(name)
            return common.Sample(events=10, seconds=1.0, latencies=[0.1])

        return run

    samples = common.interleave(3, {"a": contender("a"), "b": contender("b")})
    assert order == ["a", "b", "a", "b", "a", "b"]
    assert [len(samples["a"]), len(samples["b"])] == [3, 3]


def test_run_concurrent_counts_every_call_of_every_thread():
    opened: list[int] = []
    closed: list[int] = []
    sample = common.run_concurrent(4, 25, lambda thread, index: 2, before=opened.append, after=closed.append)
    assert sample.events == 4 * 25 * 2
    assert len(sample.latencies) == 100
    assert sorted(opened) == sorted(closed) == [0, 1, 2, 3]


def test_run_concurrent_raises_what_a_thread_raised():
    def call(thread: int, index: int) -> int:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        common.run_concurrent(2, 3, call)


def test_summary_row_ratio_and_verdict():
    fast = common.summarise("ours", [common.Sample(300, 1.0, [0.001]), common.Sample(100, 1.0, [0.002])])
    slow = common.summarise("peer", [common.Sample(100, 1.0, [0.004])])
    assert fast.rate == 200.0
    row = common.Row("work", fast, slow, target=1.5)
    assert row.ratio == 2.0 and row.verdict() == "met"
    assert common.Row("work", slow, fast, target=1.5).verdict() == "MISSED"
    table = common.format_markdown([row])
    assert "| work | ours | 200 |" in table and "2.00x" in table and "(met)" in table
    assert "2.00x" in common.format_table([row])


def test_fresh_database_creates_an_empty_database_and_drop_removes_it():
    name = f"test_bench_fresh_{os.getpid()}"
    url = common.fresh_database(name)
    try:
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE leftover (id int)")
        url = common.fresh_database(name)  # again: the old one is replaced
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT to_regclass('leftover')").fetchone()[0] is None
    finally:
        common.drop_database(name)
    with psycopg.connect(common.database_url("postgres")) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None


def test_post_request_is_a_complete_http_request():
    raw = common.post_request("http://127.0.0.1:8081", "/api/v1/events", b'{"a": 1}')
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /api/v1/events HTTP/1.1\r\n")
    assert b"Content-Length: 8" in head and b"Host: 127.0.0.1:8081" in head
    assert body == b'{"a": 1}'


@pytest.mark.django_db
def test_the_noop_view_is_not_mounted_by_default(api):
    response = api.post("/bench/noop", {}, format="json")
    assert response.status_code == 404


def test_append_cpu_splits_the_cpu_of_a_round_per_event():
    from bench.append_cpu import measure

    def run() -> common.Sample:
        deadline = time.process_time() + 0.2
        while time.process_time() < deadline:  # burn 200 ms of this process's CPU
            pass
        return common.Sample(events=100, seconds=0.2)

    cost = measure(run)
    assert cost.process_us >= 1_500  # 200 ms over 100 events is 2,000 us each
    assert cost.rate == 500
    assert cost.switches >= 0


@pytest.mark.django_db
def test_the_ceiling_scripts_append_through_pgbench():
    """Each statement of ``bench.ceiling`` runs in pgbench without an error (rolled back here)."""
    from bench import ceiling
    from bench.log import RAW_TABLE, Raw
    from tests.conftest import database_url_of_test_db

    url = database_url_of_test_db()
    Raw(url).close()
    try:
        for name, (_, script) in ceiling.SCRIPTS.items():
            rolled_back = f"BEGIN;\n{script}\nROLLBACK;"
            rate = ceiling.transactions_per_second(ceiling.pgbench(), url, rolled_back, 2, "--transactions=3")
            assert rate > 0, name
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE {RAW_TABLE}")
            conn.execute(f"DROP SEQUENCE {RAW_TABLE}_seq")


@pytest.mark.django_db(transaction=True)
def test_append_cpu_sends_the_append_through_a_cursor_as_the_service_calls_it(monkeypatch):
    from bench.append_cpu import CursorPath
    from events import services
    from tests.events.helpers import new_event

    monkeypatch.setattr(services, "_APPEND_ONE", CursorPath())
    appended = services.append_one(new_event(executionid="cursor-path"))
    assert (appended.stream, appended.version, appended.duplicate) == ("execution-cursor-path", 0, False)


@pytest.mark.django_db
def test_the_plans_benchmark_names_the_batch_function():
    from django.db import connection

    from bench.plans import SETTING

    with connection.cursor() as cursor:  # in the test's transaction, rolled back
        for setting in ("RESET plan_cache_mode", "SET plan_cache_mode = force_generic_plan"):
            cursor.execute(SETTING.format(setting))


@pytest.mark.django_db(transaction=True)
def test_the_horizon_benchmark_measures_both_cases_and_checks_the_horizon():
    from bench.horizon import horizon_rows
    from events import services
    from tests.conftest import database_url_of_test_db
    from tests.events.helpers import new_event

    services.append([new_event() for _ in range(30)], stream="horizon-bench")
    rows = horizon_rows(
        lambda: psycopg.connect(database_url_of_test_db(), autocommit=True),
        lambda count: services.append([new_event() for _ in range(count)], stream="horizon-bench"),
        past=40,
        calls=5,
        rounds=1,
    )
    assert [row.work for row in rows] == [
        "horizon, nothing held",
        "horizon, 40 events past a held transaction",
    ]
    assert all(row.ours.rate > 0 and row.other.rate > 0 for row in rows)


@pytest.mark.django_db(transaction=True)
def test_the_instruction_counts_run_statements_the_database_takes():
    """``bench.instructions`` feeds these lines to single-user backends under valgrind; here they
    run on an ordinary connection, and write what they say they write (their baselines nothing)."""
    from bench.instructions import contenders
    from bench.log import RAW_TABLE, Raw
    from tests.conftest import database_url_of_test_db

    url = database_url_of_test_db()
    Raw(url).close()
    try:
        with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
            for pair in contenders():
                readings = [reading for each in pair for reading in each.reading()]
                for contender in [*pair, *readings]:  # the readings write nothing
                    conn.execute(contender.prepare)
                    for statement in contender.calls(2):
                        conn.execute(statement)
                    conn.execute("DEALLOCATE ALL")
            assert conn.execute("SELECT count(*) FROM flunq_events").fetchone() == (2 + 2 * 100,)
            assert conn.execute(f"SELECT count(*) FROM {RAW_TABLE}").fetchone() == (2 + 2 * 100,)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE {RAW_TABLE}")
            conn.execute(f"DROP SEQUENCE {RAW_TABLE}_seq")


def test_the_instruction_count_of_an_event_leaves_start_up_and_reading_the_values_out():
    from bench.instructions import Cluster, Contender

    class Counted(Cluster):
        """What callgrind would report: 10M to start, 3,000 per statement line that runs the
        statement (1,000 for one ignoring its parameters), and 20 per character of literals."""

        def __init__(self) -> None:
            self.runs: list[tuple[str, int]] = []

        def fresh_copy(self) -> None:
            pass

        def single(self, database: str, statements: str, *, count: bool = False) -> int:
            prepare, lines = statements.split("\n", 1)[0], statements.count("\n")
            self.runs.append((prepare, lines))
            per_line = 1_000 if prepare.endswith("SELECT 1") else 3_000
            return (
                10_000_000
                + per_line * lines
                + 20 * sum(len(m) - 2 for m in re.findall(r"'[^']*'", statements))
            )

    cluster = Counted()
    batches = Contender(
        "batches", "PREPARE s(json) AS ...",
        lambda n: iter(["BEGIN", *["EXECUTE s('xxxxxxxxxx')"] * (4 * n), "COMMIT"]), "s", 1, events=4,
    )  # fmt: skip
    # Per event: one statement line (3,000) and its argument's 10 characters (200, taken off).
    assert cluster.per_event(batches, 5) == 3_000
    ignoring = ["PREPARE s(text) AS SELECT 1"] * 2 + ["PREPARE s AS SELECT 1"] * 2  # with, without arguments
    assert [prepare for prepare, _ in cluster.runs] == [
        *ignoring,
        "PREPARE s(json) AS ...",
        "PREPARE s(json) AS ...",
    ]
    assert [lines for _, lines in cluster.runs] == [1 + 22, 1 + 42] * 3
