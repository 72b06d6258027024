"""Lag and health (status, /readyz, admin), rewinds from the command and the admin, settings."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from flunq_events.health import READINESS_CHECKS
from relay import status
from relay.models import Checkpoint, DeadLetter
from relay.services import parse_target, rewind
from tests.conftest import ROOT
from tests.relay.helpers import append_load, logged_events, settle

pytestmark = pytest.mark.django_db(transaction=True)


def test_status_reports_checkpoint_horizon_and_lag():
    append_load(30, writers=1, batch=10)
    upper = settle()
    rewind("memory", logged_events()[9][0])
    state = status.sink_status("memory")
    assert state.horizon == upper
    assert state.checkpoint == logged_events()[9][0]
    assert state.lag_events == upper - state.checkpoint
    assert state.lag_seconds >= 0
    assert [s.sink for s in status.statuses(["memory"])] == ["memory"]
    rewind("memory", upper)
    assert status.sink_status("memory").lag_seconds == 0.0


def test_readyz_shows_each_relay_sink(client, settings):
    settings.RELAY_READY_MAX_LAG_SECONDS = 0.0
    READINESS_CHECKS["relay:memory"] = lambda: status.readiness("memory")
    try:
        body = client.get("/readyz").json()
        detail = body["checks"]["relay:memory"]
        assert detail["ok"] is True
        assert {"checkpoint", "horizon", "lag_events", "lag_seconds", "last_error"} <= set(detail)
    finally:
        READINESS_CHECKS.pop("relay:memory")


def test_readiness_fails_past_the_lag_limit(settings):
    append_load(5, writers=1, batch=5)
    settle()
    Checkpoint.objects.update_or_create(sink="memory", defaults={"position": 0})
    # The oldest unpublished event is at least as old as "now minus a tiny limit".
    settings.RELAY_READY_MAX_LAG_SECONDS = 1e-9
    assert status.readiness("memory")["ok"] is False


def test_rewind_targets():
    append_load(10, writers=1, batch=10)
    first = logged_events()[0]
    assert parse_target("15") == 14
    assert parse_target("0") == 0
    assert parse_target("2000-01-01T00:00:00Z") == first[0] - 1
    with pytest.raises(Exception, match="RFC 3339"):
        parse_target("yesterday")


def test_command_rewinds_and_refuses_bad_input():
    append_load(10, writers=1, batch=10)
    settle()
    target = logged_events()[5][0]
    call_command("relay", "--backend", "memory", "--rewind-to", str(target), "--rewind-only")
    row = Checkpoint.objects.get(sink="memory")
    assert (row.position, row.epoch) == (target - 1, 1)
    with pytest.raises(CommandError, match="RFC 3339"):
        call_command("relay", "--backend", "memory", "--rewind-to", "soon", "--rewind-only")
    with pytest.raises(CommandError, match="needs --rewind-to"):
        call_command("relay", "--backend", "memory", "--rewind-only")
    with pytest.raises(CommandError, match="no backend"):
        call_command("relay")


def test_a_rewind_past_the_end_of_the_log_stops_at_the_horizon(capsys):
    """As a subscription's checkpoint and Kafka's offset resets: a checkpoint past the end would
    skip every event appended until the log reached it."""
    append_load(5, writers=1, batch=5)
    upper = settle()
    call_command("relay", "--backend", "memory", "--rewind-to", "9" * 19, "--rewind-only")
    assert Checkpoint.objects.get(sink="memory").position == upper
    assert f"after position {upper}" in capsys.readouterr().out
    assert rewind("memory", upper + 1000).position == upper


def test_admin_pages_and_rewind_action(admin_client):
    append_load(10, writers=1, batch=10)
    settle()
    row = Checkpoint.objects.create(sink="memory", position=5)
    DeadLetter.objects.create(
        sink="memory", position=3, event_id="x", source="/s", type="t", stream="s", error="too big"
    )
    page = admin_client.get("/admin/relay/checkpoint/")
    assert page.status_code == 200 and "memory" in page.content.decode()
    assert admin_client.get(f"/admin/relay/checkpoint/{row.pk}/change/").status_code == 200
    assert "too big" in admin_client.get("/admin/relay/deadletter/").content.decode()
    form = admin_client.post(
        "/admin/relay/checkpoint/", {"action": "rewind_action", "_selected_action": [row.pk]}
    )
    assert form.status_code == 200 and "Publish again from" in form.content.decode()
    done = admin_client.post(
        "/admin/relay/checkpoint/",
        {"action": "rewind_action", "_selected_action": [row.pk], "apply": "1", "target": "3"},
    )
    assert done.status_code == 302
    row.refresh_from_db()
    assert (row.position, row.epoch) == (2, 1)
    past_the_end = admin_client.post(
        "/admin/relay/checkpoint/",
        {"action": "rewind_action", "_selected_action": [row.pk], "apply": "1", "target": "9" * 18},
        follow=True,
    )
    row.refresh_from_db()
    assert row.position == settle()
    assert f"publishing again after position {row.position}." in past_the_end.content.decode()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RELAY_BATCH_SIZE", "0"),
        ("RELAY_POLL_SECONDS", "soon"),
        ("KAFKA_SECURITY_PROTOCOL", "TLS"),
        ("REDIS_STREAM_MAXLEN", "-1"),
    ],
)
def test_bad_settings_stop_the_start_naming_the_variable(name, value):
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "flunq_events.settings", name: value},
    )  # fmt: skip
    assert result.returncode != 0
    assert name in result.stderr


def test_redis_backend_needs_redis_url():
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "flunq_events.settings", "BACKEND": "redis"},
    )  # fmt: skip
    assert result.returncode != 0 and "REDIS_URL" in result.stderr


def test_sink_lag_is_exported_as_metrics(client):
    append_load(3, writers=1, batch=3)
    Checkpoint.objects.create(sink="memory", position=0)
    body = client.get("/metrics").content.decode()
    assert 'flunq_relay_checkpoint{sink="memory"} 0.0' in body
    assert 'flunq_relay_lag_events{sink="memory"}' in body
    assert 'flunq_relay_dead_letters{sink="memory"} 0.0' in body
