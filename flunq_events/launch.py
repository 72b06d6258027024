"""``make run``: the service and its workers on embedded defaults; Ctrl-C stops all it started.

- No ``DATABASE_URL``: starts an embedded PostgreSQL with its data under ``.data/postgres``.
  With it, and unless set otherwise, auth is off (``AUTH_REQUIRED=false``), which is safe only
  because every process binds 127.0.0.1; this is said at start.
- Migrates, then runs the ASGI server (HTTP + websockets on ``PORT``) and each worker in
  ``WORKERS`` whose condition holds (e.g. the relay only when ``BACKEND`` is set).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (name, manage.py arguments, condition on the environment)
WORKERS: list[tuple[str, list[str], callable]] = []
# The outbox relay (relay/): publishes every committed event to the brokers in BACKEND.
WORKERS.append(("relay", ["relay"], lambda env: bool(env.get("BACKEND", "").strip())))
# The gRPC API (grpc_api/) on GRPC_PORT, always.
WORKERS.append(("grpc", ["grpcserver"], lambda env: True))
# Subscriptions (subscriptions/): webhooks, retries, dead letters, replays, always.
WORKERS.append(("deliver", ["deliver"], lambda env: True))


def _log(message: str) -> None:
    print(f"[flunq] {message}", file=sys.stderr, flush=True)


def _embedded_postgres():
    from flunq_events.devservers import PostgresServer

    data = ROOT / ".data" / "postgres"
    data.parent.mkdir(exist_ok=True)
    port_file = ROOT / ".data" / "postgres.port"
    port = int(port_file.read_text()) if port_file.exists() else None
    server = PostgresServer(data, port, database="postgres", workdir=ROOT / ".data")
    server.start()
    port_file.write_text(str(server.port))
    return server


def main() -> int:
    env = dict(os.environ)
    postgres = None
    if not env.get("DATABASE_URL"):
        postgres = _embedded_postgres()
        env["DATABASE_URL"] = postgres.url
        _log(f"embedded PostgreSQL at {postgres.url} (data in .data/postgres)")
        if "AUTH_REQUIRED" not in env:
            env["AUTH_REQUIRED"] = "false"
            _log("AUTH_REQUIRED=false: no token needed; listening on 127.0.0.1 only")
    env.setdefault("DJANGO_SETTINGS_MODULE", "flunq_events.settings")
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], env=env, cwd=ROOT, check=True)
    subprocess.run([*manage, "seed_schemas"], env=env, cwd=ROOT, check=True)

    port = env.get("PORT", "8081")
    processes: dict[str, subprocess.Popen] = {
        "web": subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "flunq_events.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                port,
                "--no-access-log",
                "--lifespan",
                "off",
            ],
            env=env,
            cwd=ROOT,
        )
    }
    for name, arguments, condition in WORKERS:
        if condition(env):
            processes[name] = subprocess.Popen([*manage, *arguments], env=env, cwd=ROOT)
    _log(f"serving http://127.0.0.1:{port}/ (API docs at /api/docs/); processes: {', '.join(processes)}")

    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    while not stopping:
        for name, process in processes.items():
            if process.poll() is not None:
                _log(f"{name} exited with {process.returncode}; stopping everything")
                stopping, code = True, process.returncode or 1
                break
        time.sleep(0.2)
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    for process in processes.values():
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
    if postgres is not None:
        postgres.stop()
    _log("stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
