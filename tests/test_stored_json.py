"""What jsonb columns hold comes back as it was accepted: jsonb keeps a number as its digits, so a
float written with an exponent (1e20) would come back as an integer past 64 bits, which the API
could not write (a 500 on every read of that stream, snapshot or schema)."""

from __future__ import annotations

import pytest

from tests.snapshots.test_snapshots_api import _append

pytestmark = pytest.mark.django_db(transaction=True)

BIG = {"n": 1e20, "exact": 123456789012345678901234567890.5, "list": [1.0, -2.5e30], "small": 7}


def test_stream_metadata(api):
    created = api.post("/api/v1/streams", {"name": "meta-1", "metadata": BIG}, format="json")
    assert created.status_code == 201, created.content
    for response in (api.get("/api/v1/streams/meta-1"), created):
        assert response.status_code == 200 or response is created
        assert response.json()["metadata"] == BIG
    listed = api.get("/api/v1/streams?prefix=meta-")
    assert listed.status_code == 200 and listed.json()["streams"][0]["metadata"] == BIG


def test_snapshot_state(api):
    _append("execution-big-1", 2)
    saved = api.post("/api/v1/streams/execution-big-1/snapshots", {"version": 1, "state": BIG}, format="json")
    assert saved.status_code == 201, saved.content
    latest = api.get("/api/v1/streams/execution-big-1/snapshots/latest")
    assert latest.status_code == 200 and latest.json()["state"] == BIG


def test_schema_document(admin_api):
    schema = {"type": "object", "properties": {"n": {"type": "number", "maximum": 1e20}}}
    created = admin_api.post("/api/v1/schemas", {"subject": "big.number", "schema": schema}, format="json")
    assert created.status_code == 201, created.content
    read = admin_api.get("/api/v1/schemas/big.number/versions/1")
    assert read.status_code == 200 and read.json()["schema"] == schema
