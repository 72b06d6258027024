"""Real round trips against the pip-shipped dev servers (no Django involved)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import redis

from flunq_events.devservers import (
    DevServerError,
    NatsServer,
    PostgresServer,
    RedisServer,
    TansuBroker,
    free_port,
)

ROOT = Path(__file__).resolve().parents[1]


def _gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie still answers kill(pid, 0); it is dead for our purposes.
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"):
            return True
        time.sleep(0.05)
    return False


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_postgres_keeps_committed_data_after_immediate_stop(tmp_path: Path) -> None:
    pg = PostgresServer(tmp_path / "pg", database="flunq", settings={"fsync": "off"}, workdir=tmp_path)
    with pg:
        assert pg.url.endswith(f"127.0.0.1:{pg.port}/flunq")
        with psycopg.connect(pg.url, autocommit=True) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
            conn.execute("create table t (v text)")
            conn.execute("insert into t values ('kept')")
        pid = pg.pid
        pg.stop("immediate")  # crash-like: no shutdown checkpoint, WAL replay on start
        assert pg.pid is None and _gone(pid)
        pg.start()
        with psycopg.connect(pg.url) as conn:
            assert conn.execute("select v from t").fetchall() == [("kept",)]
        pg.kill()
        pg.start()  # the same data dir and port again, after SIGKILL
        with psycopg.connect(pg.url) as conn:
            assert conn.execute("select count(*) from t").fetchone() == (1,)
    assert not pg.running


def test_postgres_cli_prints_url_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "flunq_events.devservers", "postgres", "--data", str(tmp_path / "data")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert url.startswith("postgresql://postgres@127.0.0.1:")
        with psycopg.connect(url) as conn:
            server_pid = conn.execute("select pg_backend_pid()").fetchone()
            assert server_pid
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=2)
    finally:
        proc.kill()


def test_tansu_produce_and_consume() -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    def produce(bootstrap: str, topic: str) -> TopicPartition:
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        # Auto-created topics get 4 partitions here; the record lands in any of them.
        sent = producer.send(topic, b"hello").get(timeout=10)
        producer.close()
        return sent.topic_partition

    topic = f"t-{uuid.uuid4().hex[:8]}"
    with TansuBroker() as broker:
        produce(broker.bootstrap, topic)
        # A group consumer, as the app uses; the join alone costs ~3 s (rebalance delay).
        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=broker.bootstrap,
            group_id="g",
            auto_offset_reset="earliest",
            session_timeout_ms=6000,
            heartbeat_interval_ms=500,
            consumer_timeout_ms=10000,
        )
        try:
            assert next(iter(consumer)).value == b"hello"
        finally:
            consumer.close()

        broker.stop()
        broker.start()  # same port; memory storage, so the topic is gone: produce again
        partition = produce(broker.bootstrap, topic)
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, consumer_timeout_ms=10000)
        try:
            consumer.assign([partition])
            consumer.seek_to_beginning()
            assert next(iter(consumer)).value == b"hello"
        finally:
            consumer.close()


def test_nats_jetstream_survives_restart() -> None:
    import nats

    async def publish(url: str) -> int:
        nc = await nats.connect(url)
        js = nc.jetstream()
        await js.add_stream(name="DEV", subjects=["dev.>"])
        ack = await js.publish("dev.one", b"x")
        await nc.close()
        return ack.seq

    async def count(url: str) -> int:
        nc = await nats.connect(url)
        info = await nc.jetstream().stream_info("DEV")
        await nc.close()
        return info.state.messages

    with NatsServer() as server:
        assert asyncio.run(publish(server.url)) == 1
        port = server.port
        server.stop()
        server.start()
        assert server.port == port
        assert asyncio.run(count(server.url)) == 1


def test_redis_round_trip_and_appendonly_restart(tmp_path: Path) -> None:
    with RedisServer(workdir=tmp_path, appendonly=True) as server:
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        client.set("k", "v")
        client.close()
        server.stop()
        server.start()
        client = redis.Redis.from_url(server.url)
        assert client.get("k") == b"v"
        client.close()
        server.kill()
        assert not server.running


def test_failed_start_reports_log_tail() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))  # bound, not listening: the probe is refused at once
        server = RedisServer(port=taken.getsockname()[1])
        with pytest.raises(DevServerError, match=r"(?s)exited with code.*already in use"):
            server.start()
        server.close()


_PARENT = """
import sys
from flunq_events.devservers import NatsServer, PostgresServer, RedisServer
if sys.argv[1] == "kill":
    servers = [PostgresServer(workdir=sys.argv[2], settings={"fsync": "off"}), NatsServer(workdir=sys.argv[2])]
else:
    servers = [RedisServer(), NatsServer()]  # own temp work dirs, removed at exit
for server in servers:
    server.start()
print(*(s.pid for s in servers), *(s.workdir for s in servers), flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("end", ["exit", "kill"])
def test_servers_die_with_their_parent(tmp_path: Path, end: str) -> None:
    # "exit": atexit stops them and removes temp dirs. "kill": a SIGKILLed parent runs
    # no atexit, so the kernel (PR_SET_PDEATHSIG, Linux only) must take them down.
    if end == "kill" and not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux-only")
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, end, str(tmp_path)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        pid1, pid2, dir1, dir2 = parent.stdout.readline().split()  # type: ignore[union-attr]
        if end == "kill":
            parent.kill()
        else:
            parent.stdin.close()  # type: ignore[union-attr]
        parent.wait(15)
        assert _gone(int(pid1)) and _gone(int(pid2))
        if end == "exit":
            assert not Path(dir1).exists() and not Path(dir2).exists()
    finally:
        parent.kill()
