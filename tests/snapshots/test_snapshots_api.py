"""Snapshots over REST: save, latest, list, state; retention; bad input; events untouched."""

from __future__ import annotations

import pytest
from django.test import override_settings

from events.cloudevents import from_structured
from events.services import append
from streams.services import create_stream, delete_stream

pytestmark = pytest.mark.django_db(transaction=True)


def _append(stream: str, count: int, start: int = 0) -> None:
    events = [
        from_structured(
            {
                "specversion": "1.0",
                "id": f"{stream}-{start + i}",
                "source": "/test",
                "type": "task.completed",
                "data": {"n": start + i},
            }
        )
        for i in range(count)
    ]
    append(events, stream=stream)


def _url(stream: str, tail: str = "snapshots") -> str:
    return f"/api/v1/streams/{stream}/{tail}"


def test_save_latest_list_and_state(api):
    _append("execution-1", 5)
    first = api.post(_url("execution-1"), {"version": 1, "state": {"done": 2}}, format="json")
    assert first.status_code == 201, first.content
    assert (
        first.json()["version"] == 1 and first.json()["state"] == {"done": 2} and first.json()["type"] is None
    )
    second = api.post(_url("execution-1"), {"version": 3, "state": {"done": 4}, "type": "v2"}, format="json")
    assert second.status_code == 201 and second.json()["type"] == "v2"

    latest = api.get(_url("execution-1", "snapshots/latest")).json()
    assert (latest["version"], latest["state"]) == (3, {"done": 4})
    assert api.get(_url("execution-1", "snapshots/latest") + "?type=").json()["version"] == 1
    listed = api.get(_url("execution-1")).json()["snapshots"]
    assert [s["version"] for s in listed] == [3, 1]

    state = api.get(_url("execution-1", "state")).json()
    assert state["snapshot"]["version"] == 3
    assert [e["version"] for e in state["events"]] == [4]
    assert state["last_version"] == 4 and state["next_version"] is None
    typed = api.get(_url("execution-1", "state") + "?type=").json()
    assert typed["snapshot"]["version"] == 1 and [e["version"] for e in typed["events"]] == [2, 3, 4]
    paged = api.get(_url("execution-1", "state") + "?type=&limit=2").json()
    assert [e["version"] for e in paged["events"]] == [2, 3] and paged["next_version"] == 4


def test_state_without_snapshot_is_every_event(api):
    _append("execution-2", 3)
    state = api.get(_url("execution-2", "state")).json()
    assert state["snapshot"] is None and [e["version"] for e in state["events"]] == [0, 1, 2]
    assert api.get(_url("execution-2", "snapshots/latest")).status_code == 404


def test_resave_replaces_and_events_are_untouched(api):
    _append("execution-3", 2)
    before = api.get("/api/v1/streams/execution-3/events").json()["events"]
    assert api.post(_url("execution-3"), {"version": 1, "state": {"a": 1}}, format="json").status_code == 201
    again = api.post(_url("execution-3"), {"version": 1, "state": {"a": 2}}, format="json")
    assert again.status_code == 200 and again.json()["state"] == {"a": 2}
    assert len(api.get(_url("execution-3")).json()["snapshots"]) == 1
    assert api.get("/api/v1/streams/execution-3/events").json()["events"] == before


@override_settings(SNAPSHOT_RETENTION=2)
def test_retention_keeps_the_newest_per_type(api):
    _append("execution-4", 6)
    for version in range(5):
        assert (
            api.post(
                _url("execution-4"), {"version": version, "state": {"v": version}}, format="json"
            ).status_code
            == 201
        )
    api.post(_url("execution-4"), {"version": 0, "state": {}, "type": "other"}, format="json")
    versions = [(s["version"], s["type"]) for s in api.get(_url("execution-4")).json()["snapshots"]]
    assert versions == [(4, None), (3, None), (0, "other")]
    # Older than every one kept: said so, and nothing written (not a 201 for a snapshot removed at once).
    older = api.post(_url("execution-4"), {"version": 1, "state": {"v": 1}}, format="json")
    assert older.status_code == 409 and older.json()["error"] == "snapshot_superseded"
    assert [s["version"] for s in api.get(_url("execution-4")).json()["snapshots"]] == [4, 3, 0]


def test_version_beyond_the_stream_is_a_conflict(api):
    _append("execution-5", 2)
    response = api.post(_url("execution-5"), {"version": 2, "state": {}}, format="json")
    assert response.status_code == 409
    assert response.json()["error"] == "snapshot_version_ahead" and response.json()["last_version"] == 1


def test_unknown_and_deleted_streams(api):
    assert api.post(_url("nope"), {"version": 0, "state": {}}, format="json").status_code == 404
    assert api.get(_url("nope")).status_code == 404
    assert api.get(_url("nope", "snapshots/latest")).status_code == 404
    assert api.get(_url("nope", "state")).status_code == 404
    _append("execution-6", 1)
    api.post(_url("execution-6"), {"version": 0, "state": {}}, format="json")
    delete_stream("execution-6")
    for response in (
        api.post(_url("execution-6"), {"version": 0, "state": {}}, format="json"),
        api.get(_url("execution-6")),
        api.get(_url("execution-6", "snapshots/latest")),
        api.get(_url("execution-6", "state")),
    ):
        assert response.status_code == 410 and response.json()["error"] == "stream_deleted"


def test_names_no_stream_can_have_are_not_found(api):
    # %00 in the path used to reach PostgreSQL (which refuses NUL in text) and answer 500.
    for name in ("a%00b", "%00", "-x", "a" * 300):
        for tail in ("snapshots", "snapshots/latest", "state"):
            response = api.get(_url(name, tail))
            assert response.status_code == 404 and response.json()["error"] == "not_found", (name, tail)
        saved = api.post(_url(name), {"version": 0, "state": {}}, format="json")
        assert 400 <= saved.status_code < 500 and "error" in saved.json(), (name, saved.content)


def test_a_recreated_stream_ignores_snapshots_of_its_earlier_life(api):
    _append("execution-7", 2)
    api.post(_url("execution-7"), {"version": 1, "state": {"old": True}}, format="json")
    delete_stream("execution-7")
    create_stream("execution-7")
    assert api.get(_url("execution-7", "snapshots/latest")).status_code == 404
    response = api.post(_url("execution-7"), {"version": 1, "state": {}}, format="json")
    assert response.status_code == 409 and response.json()["error"] in (
        "snapshot_version_ahead",
        "snapshot_version_hidden",
    )
    _append("execution-7", 1, start=10)
    assert (
        api.post(_url("execution-7"), {"version": 1, "state": {}}, format="json").json()["error"]
        == "snapshot_version_hidden"
    )
    assert (
        api.post(_url("execution-7"), {"version": 2, "state": {"new": True}}, format="json").status_code
        == 201
    )


BAD_BODIES = [
    ({"state": {}}, "version"),
    ({"version": "1", "state": {}}, "version"),
    ({"version": True, "state": {}}, "version"),
    ({"version": -1, "state": {}}, "version"),
    ({"version": 1.5, "state": {}}, "version"),
    ({"version": 0}, "state"),
    ({"version": 0, "state": None}, "state"),
    ({"version": 0, "state": {}, "type": 7}, "type"),
    ({"version": 0, "state": {}, "type": "x" * 201}, "type"),
]


def test_bad_bodies_name_the_field(api):
    _append("execution-8", 1)
    for body, field in BAD_BODIES:
        response = api.post(_url("execution-8"), body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert response.json()["field"] == field, body
    assert api.get(_url("execution-8")).json()["snapshots"] == []


def test_bad_documents(api):
    _append("execution-9", 1)
    for raw in (b"[1]", b"{", b'{"version": 0, "state": NaN}', b'{"version": 0, "state": {"a": "\\u0000"}}',
                b'{"version": 99999999999999999999, "state": {}}'):  # fmt: skip
        response = api.post(_url("execution-9"), raw, content_type="application/json")
        assert response.status_code == 400, (raw, response.content)
        assert response.json()["error"] == "invalid_request"
    unknown = api.post(_url("execution-9"), {"version": 0, "state": {}, "extra": 1}, format="json")
    assert unknown.status_code == 400 and unknown.json()["unknown"] == ["extra"]
    assert api.get(_url("execution-9") + "?bogus=1").status_code == 400
    assert api.get(_url("execution-9") + "?limit=0").status_code == 400
    assert api.get(_url("execution-9", "state") + "?limit=x").status_code == 400


def test_scopes(make_token, client):
    _append("execution-10", 1)
    reader = {"HTTP_AUTHORIZATION": f"Bearer {make_token(['events:read'])}"}
    response = client.post(
        _url("execution-10"), {"version": 0, "state": {}}, content_type="application/json", **reader
    )
    assert response.status_code == 403
    assert client.get(_url("execution-10"), **reader).status_code == 200
    assert client.get(_url("execution-10")).status_code == 401


def test_admin_lists_snapshots_per_stream(api, admin_client):
    _append("execution-11", 3)
    _append("execution-12", 1)
    api.post(_url("execution-11"), {"version": 1, "state": {"label": "<b>kept</b>"}}, format="json")
    api.post(_url("execution-12"), {"version": 0, "state": {}}, format="json")
    page = admin_client.get("/admin/snapshots/snapshot/?stream__name__exact=execution-11")
    assert page.status_code == 200
    body = page.content.decode()
    assert "execution-11" in body and "?stream__name__exact=execution-12" not in body
    snapshot_id = api.get(_url("execution-11")).json()["snapshots"][0]
    from snapshots.models import Snapshot

    row = Snapshot.objects.get(stream_id="execution-11", version=snapshot_id["version"])
    detail = admin_client.get(f"/admin/snapshots/snapshot/{row.pk}/change/")
    assert detail.status_code == 200 and "&lt;b&gt;kept&lt;/b&gt;" in detail.content.decode()


def test_a_tenant_sees_only_its_streams_snapshots(api, make_token, client):
    append(
        [from_structured({"specversion": "1.0", "id": "tn-1", "source": "/t", "type": "task.completed",
                          "executionid": "g1", "tenantid": "globex"})]
    )  # fmt: skip
    assert api.post(_url("execution-g1"), {"version": 0, "state": {}}, format="json").status_code == 201
    acme = {"HTTP_AUTHORIZATION": f"Bearer {make_token(['events:read', 'events:write'], tenant='acme')}"}
    for response in (
        client.get(_url("execution-g1"), **acme),
        client.get(_url("execution-g1", "snapshots/latest"), **acme),
        client.get(_url("execution-g1", "state"), **acme),
        client.post(
            _url("execution-g1"), {"version": 0, "state": {}}, content_type="application/json", **acme
        ),
    ):
        assert response.status_code == 404, response.content
