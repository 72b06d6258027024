"""Metrics, request ids and JSON logs, readiness, rate limits."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from events import horizon
from flunq_events import metrics
from flunq_events.logs import JSONFormatter
from tests.conftest import database_url_of_test_db
from tests.events.helpers import cloudevent

# Only tests that append need a transactional database (the append must be the first write of its
# transaction); the others run in a rolled-back transaction, which is much cheaper.
appends = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parent.parent.parent


def scrape(client) -> dict[str, list]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return {
        family.name: family.samples for family in text_string_to_metric_families(response.content.decode())
    }


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@appends
def test_metrics_count_appends_outcomes_and_latency(api, client):
    before = {
        "written": sample("flunq_append_calls_total", outcome="written"),
        "duplicate": sample("flunq_append_calls_total", outcome="duplicate"),
        "conflict": sample("flunq_append_calls_total", outcome="wrong_expected_version"),
        "events": sample("flunq_appended_events_total"),
        "latency": sample("flunq_append_seconds_count"),
    }
    batch = [cloudevent(executionid="m1") for _ in range(3)]
    assert api.post("/api/v1/events", json.dumps(batch), content_type="application/json").status_code == 201
    assert api.post("/api/v1/events", json.dumps(batch), content_type="application/json").status_code == 200
    stale = api.post(
        "/api/v1/streams/execution-m1/events?expected_version=0",
        json.dumps(cloudevent()),
        content_type="application/json",
    )
    assert stale.status_code == 409
    assert sample("flunq_append_calls_total", outcome="written") == before["written"] + 1
    assert sample("flunq_append_calls_total", outcome="duplicate") == before["duplicate"] + 1
    assert sample("flunq_append_calls_total", outcome="wrong_expected_version") == before["conflict"] + 1
    assert sample("flunq_appended_events_total") == before["events"] + 3
    assert sample("flunq_append_seconds_count") == before["latency"] + 2

    families = scrape(client)
    assert "flunq_append_seconds" in families and "flunq_append_batch_events" in families
    requests = [
        s
        for s in families["flunq_http_requests"]
        if s.labels == {"method": "POST", "route": "events", "status": "201"}
    ]
    assert requests and requests[0].value >= 1
    assert any(
        s.labels.get("route") == "stream-events" for s in families["flunq_http_request_duration_seconds"]
    )


@appends
def test_horizon_lag_shows_an_open_transaction(api, client):
    first = api.post("/api/v1/events", json.dumps(cloudevent()), content_type="application/json").json()
    horizon.wait_for(first["position"], 10)
    # Another session appends and keeps its transaction open: positions after it wait.
    with psycopg.connect(database_url_of_test_db(), autocommit=False) as held:
        payload = json.dumps([{**cloudevent(), "stream": "held-1", "extensions": {}}])
        held.execute("SELECT * FROM flunq_append(%s::json, 'any')", [payload])
        later = api.post("/api/v1/events", json.dumps(cloudevent()), content_type="application/json").json()
        families = scrape(client)
        lag = {s.labels["unit"]: s.value for s in families["flunq_horizon_lag"]}
        positions = {s.labels["figure"]: s.value for s in families["flunq_log_position"]}
        assert positions["max_position"] >= later["position"] > positions["horizon"]
        assert lag["events"] >= 1 and lag["seconds"] > 0
        held.rollback()
    assert horizon.wait_for(later["position"], 10) >= later["position"]


@pytest.mark.django_db
def test_gauges_registered_by_other_parts(client):
    errors = sample("flunq_metrics_callback_errors_total", gauge="flunq_test_broken")
    metrics.register_gauge("flunq_test_lag", "lag of a test sink", ["sink"], lambda: [({"sink": "a"}, 7)])

    def broken():
        raise RuntimeError("sink table missing")

    metrics.register_gauge("flunq_test_broken", "always fails", [], broken)
    try:
        families = scrape(client)
        assert (
            families["flunq_test_lag"][0].labels == {"sink": "a"} and families["flunq_test_lag"][0].value == 7
        )
        assert "flunq_test_broken" not in families and "flunq_log_position" in families
        # (reading the counter collects once more, hence at least one)
        assert sample("flunq_metrics_callback_errors_total", gauge="flunq_test_broken") >= errors + 1
    finally:
        metrics.unregister_gauge("flunq_test_lag")
        metrics.unregister_gauge("flunq_test_broken")


@pytest.mark.django_db
def test_request_id_is_echoed_or_made(api):
    given = api.get("/api/v1/events", HTTP_X_REQUEST_ID="abc-123.x")
    assert given["X-Request-ID"] == "abc-123.x"
    made = api.get("/api/v1/events", HTTP_X_REQUEST_ID="bad id\twith spaces")
    assert made["X-Request-ID"] != "bad id\twith spaces" and len(made["X-Request-ID"]) == 32
    assert api.get("/healthz")["X-Request-ID"]


@pytest.mark.django_db
def test_one_json_log_line_per_request_with_the_request_id(make_token, caplog):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(tenant='acme')}")
    with caplog.at_level(logging.INFO, logger="flunq.http"):
        client.get("/api/v1/streams/nope", HTTP_X_REQUEST_ID="req-42")
    records = [r for r in caplog.records if r.name == "flunq.http"]
    assert len(records) == 1
    line = JSONFormatter().format(records[0])
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["method"] == "GET" and entry["status"] == 404 and entry["route"] == "stream-detail"
    assert entry["path"] == "/api/v1/streams/nope" and entry["tenant"] == "acme"
    assert entry["principal"].startswith("test-") and entry["duration_ms"] >= 0
    assert entry["level"] == "INFO" and entry["logger"] == "flunq.http"
    assert "Bearer" not in line and "flq_" not in line


def test_probes_are_logged_at_debug(client, caplog):
    with caplog.at_level(logging.DEBUG, logger="flunq.http"):
        client.get("/healthz")
    assert [r.levelname for r in caplog.records if r.name == "flunq.http"] == ["DEBUG"]


def test_log_lines_written_during_a_request_carry_its_id():
    from flunq_events import logs

    formatter = JSONFormatter()
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    record.sink = "kafka"
    token = logs.bind_request_id("rid-1")
    try:
        entry = json.loads(formatter.format(record))
    finally:
        logs.request_id.reset(token)
    assert entry["message"] == "hello world" and entry["request_id"] == "rid-1" and entry["sink"] == "kafka"
    assert "request_id" not in json.loads(formatter.format(record))


def test_log_format_and_level_from_the_environment():
    # The server's own output: one JSON object per line at LOG_LEVEL.
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('flunq.x').info('shown', extra={'n': 1}); "
        "logging.getLogger('flunq.x').debug('hidden')"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "flunq_events.settings",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert [(line["message"], line["n"]) for line in lines] == [("shown", 1)], result.stderr


@pytest.mark.django_db
def test_readiness_reports_the_channel_layer(client):
    response = client.get("/readyz")
    body = response.json()
    assert body["checks"]["channel_layer"]["ok"] is True, body
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_readiness_fails_when_the_channel_layer_is_unreachable(client, settings):
    from channels.layers import channel_layers
    from django.test.utils import override_settings

    from flunq_events.devservers import free_port

    dead = f"redis://127.0.0.1:{free_port()}/0"
    layers = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [dead]}}}
    with override_settings(CHANNEL_LAYERS=layers):
        channel_layers.backends.clear()
        try:
            response = client.get("/readyz")
        finally:
            channel_layers.backends.clear()
    assert response.status_code == 503
    assert response.json()["checks"]["channel_layer"]["ok"] is False


# --- rate limits -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_rate_limit_per_token(make_token, settings):
    settings.RATE_LIMIT = "3/h"
    first, second = APIClient(), APIClient()
    first.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token()}")
    second.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token()}")
    statuses = [first.get("/api/v1/streams").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = first.get("/api/v1/streams")
    assert refused.json()["error"] == "rate_limited" and int(refused["Retry-After"]) > 0
    assert second.get("/api/v1/streams").status_code == 200  # counted per token


@pytest.mark.django_db
def test_rate_limit_off_by_default(api, settings):
    assert settings.RATE_LIMIT == ""
    assert all(api.get("/api/v1/streams").status_code == 200 for _ in range(20))


@pytest.mark.parametrize("value", ["10/d"])
def test_a_bad_rate_limit_stops_the_start(value):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, "RATE_LIMIT": value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "RATE_LIMIT: expected" in result.stderr, result.stderr[-2000:]


def test_rate_limit_counters_are_shared_through_redis(redis_url):
    from django.core import cache as cache_module
    from django.core.cache.backends.redis import RedisCache
    from django.test.utils import override_settings

    from access.throttling import TokenRateThrottle

    cache = RedisCache(redis_url, {})
    principal = type("P", (), {"name": f"shared-{os.getpid()}-{id(cache)}"})()
    request = type("R", (), {"user": principal})()

    with override_settings(RATE_LIMIT="2/h"):
        original = cache_module.caches["throttle"]
        cache_module.caches["throttle"] = cache
        try:
            # two processes would hold two throttles; the counter is Redis's
            answers = [TokenRateThrottle().allow_request(request, None) for _ in range(3)]
        finally:
            cache_module.caches["throttle"] = original
    assert answers == [True, True, False]
