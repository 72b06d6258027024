"""Fixtures of the schema registry tests: a clean per-process validation cache around each test."""

from __future__ import annotations

import pytest

from schemas import validation


@pytest.fixture(autouse=True)
def _fresh_validation_cache():
    # Tables are emptied between tests; a cached "latest version" must not outlive its rows.
    validation.invalidate()
    yield
    validation.invalidate()
