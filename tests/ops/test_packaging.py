"""The Dockerfile and docker-compose.yml, checked without a Docker engine.

The compose file must parse, start every process ``make run`` starts (the web server and each
worker of ``flunq_events.launch.WORKERS``) and every server they need, give the service processes
only settings that exist, every setting that points at a server, pointing at a service of the file,
and values the settings module accepts (``manage.py check`` with exactly that environment).
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from flunq_events.launch import WORKERS

ROOT = Path(__file__).resolve().parent.parent.parent
SERVERS = {"postgres", "redis", "kafka", "nats"}
# Settings that connect the service to a server, with the service that must answer.
CONNECTIONS = {"DATABASE_URL": "postgres", "REDIS_URL": "redis", "KAFKA_BROKERS": "kafka", "NATS_URL": "nats"}
REQUIRED = {*CONNECTIONS, "BACKEND", "SECRET_KEY", "ALLOWED_HOSTS", "PORT", "GRPC_PORT"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def settings_variables() -> set[str]:
    """Every environment variable ``flunq_events/settings.py`` reads through the env helpers."""
    tree = ast.parse((ROOT / "flunq_events" / "settings.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id.startswith("env_")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(node.args[0].value)
    return names


def interpolate(value: object) -> str:
    """Compose's ``${NAME:-default}`` as an unset NAME would give it."""
    return re.sub(r"\$\{[A-Z_]+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", str(value))


def app_services(compose: dict) -> dict[str, dict]:
    return {name: svc for name, svc in compose["services"].items() if svc.get("build")}


def command_of(service: dict) -> list[str]:
    command = service.get("command")
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def test_compose_names_every_server_and_process(compose):
    services = compose["services"]
    assert set(services) >= SERVERS
    commands = {name: command_of(svc) for name, svc in app_services(compose).items()}
    # the web server runs the image's CMD (uvicorn, the ASGI app)
    assert "web" in commands and commands["web"] == []
    for name, arguments, _condition in WORKERS:
        assert any(
            cmd[:2] == ["python", "manage.py"] and cmd[2 : 2 + len(arguments)] == arguments
            for cmd in commands.values()
        ), f"no compose service runs the {name} worker (manage.py {' '.join(arguments)})"
    # every process of the service waits for the migrations
    for name, svc in app_services(compose).items():
        if name != "migrate":
            assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name


def test_servers_are_the_ones_the_design_names(compose):
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    assert not any("zookeeper" in name for name in services)
    assert services["nats"]["image"].startswith("nats:")
    assert {"--jetstream", "-js"} & set(command_of(services["nats"]))
    assert "idle_in_transaction_session_timeout=60000" in command_of(services["postgres"])


def test_service_environment_names_real_settings_and_real_servers(compose):
    known = settings_variables()
    assert {"DATABASE_URL", "REDIS_URL", "LOG_LEVEL", "RATE_LIMIT"} <= known  # the scan works
    services = compose["services"]
    for name, svc in app_services(compose).items():
        environment = svc["environment"]
        assert set(environment) <= known, f"{name}: not settings: {sorted(set(environment) - known)}"
        assert set(environment) >= REQUIRED, f"{name}: missing {sorted(REQUIRED - set(environment))}"
        for variable, server in CONNECTIONS.items():
            value = interpolate(environment[variable])
            hosts = (
                [urlsplit(value).hostname]
                if "://" in value
                else [hp.split(":")[0] for hp in value.split(",")]
            )
            assert hosts == [server] and server in services, (name, variable, value)
        assert set(interpolate(environment["BACKEND"]).split(",")) == {"redis", "kafka", "nats"}


def test_settings_accept_the_compose_environment(compose):
    environment = {
        key: interpolate(value) for key, value in compose["services"]["web"]["environment"].items()
    }
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**base, **environment},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of each Dockerfile instruction, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            instructions.append((word.upper(), rest.strip()))
    return instructions


def test_dockerfile_at_linter_level():
    instructions = dockerfile()
    words = [word for word, _ in instructions]
    assert set(words) <= {
        "FROM",
        "ENV",
        "WORKDIR",
        "COPY",
        "RUN",
        "USER",
        "EXPOSE",
        "HEALTHCHECK",
        "CMD",
        "ARG",
        "LABEL",
    }
    assert instructions[0][0] == "FROM" and re.match(r"python:3\.11(\.\d+)?-slim", instructions[0][1])
    assert words.count("CMD") == 1 and words.count("HEALTHCHECK") == 1
    user = [rest for word, rest in instructions if word == "USER"]
    assert user and user[-1] not in ("root", "0"), "runs as root"
    assert words.index("USER") < words.index("CMD")
    healthcheck = dict(instructions)["HEALTHCHECK"]
    assert "/healthz" in healthcheck and "CMD" in healthcheck
    cmd = dict(instructions)["CMD"]
    assert "uvicorn" in cmd and "flunq_events.asgi:application" in cmd and "0.0.0.0" in cmd
    assert "8081" in dict(instructions)["EXPOSE"] and "9001" in dict(instructions)["EXPOSE"]
    assert any(
        word == "RUN" and "requirements" in rest and "pip install" in rest for word, rest in instructions
    )
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".data"} <= set(ignored)
