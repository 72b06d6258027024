"""Settings come from the environment; a bad value stops the start naming the variable."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flunq_events import env

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("PORT", "eighty", "expected an integer"),
        ("PORT", "70000", "<= 65535"),
        ("GRPC_PORT", "0", ">= 1"),
        ("BACKEND", "rabbitmq", "redis|kafka|nats"),
        ("REDIS_URL", "http://x", "scheme"),
        ("KAFKA_BROKERS", "localhost", "host:port"),
        ("NATS_URL", "nats://host:notaport", "port"),
        ("DATABASE_URL", "mysql://x/y", "postgres"),
        ("DEBUG", "maybe", "true or false"),
        ("AUTH_REQUIRED", "sometimes", "true or false"),
        ("MAX_BODY_BYTES", "12", ">= 1024"),
        ("MIN_POSITION_WAIT_SECONDS", "nan", "a number"),
        ("LOG_LEVEL", "LOUD", "DEBUG|INFO"),
    ],
)
def test_a_bad_value_stops_the_start_naming_the_variable(variable, value, words):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, variable: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert f"{variable}: expected" in result.stderr and words in result.stderr, result.stderr[-2000:]


def test_helpers_parse_good_values(monkeypatch):
    monkeypatch.setenv("X_INT", " 42 ")
    monkeypatch.setenv("X_LIST", "a, b,,c")
    monkeypatch.setenv("X_BOOL", "Yes")
    monkeypatch.setenv("X_HOSTS", "k1:9092,k2:9093")
    assert env.env_int("X_INT", 1) == 42
    assert env.env_list("X_LIST") == ["a", "b", "c"]
    assert env.env_bool("X_BOOL", False) is True
    assert env.env_hostports("X_HOSTS", None) == ["k1:9092", "k2:9093"]
    assert env.env_int("X_MISSING", 7) == 7


def test_the_readme_configuration_table_names_every_variable_the_settings_read():
    settings_source = (ROOT / "flunq_events" / "settings.py").read_text()
    read = set(re.findall(r'env_\w+\(\s*"([A-Z][A-Z0-9_]*)"', settings_source))
    assert {"PORT", "GRPC_PORT", "AUTH_REQUIRED"} <= read  # the pattern still finds them
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration") :].split("\n## ", 1)[0]
    first_cells = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    listed = {name for cell in first_cells for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", cell)}
    assert read - listed == set()
