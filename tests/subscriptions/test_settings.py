"""The subscription settings with their own parsing refuse bad values at start, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("variable", "value"),
    [("WEBHOOK_ALLOWED_HOSTS", "10.0.0.0/8,bad host!"), ("SUBSCRIPTION_RETRY_SCHEDULE", "5,soon")],
)
def test_a_bad_value_stops_the_start_naming_the_variable(variable, value):
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "flunq_events.settings", variable: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert f"{variable}: expected" in result.stderr, result.stderr[-2000:]
