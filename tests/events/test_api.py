"""REST API of the log: the three HTTP modes, reads, cursors, filters, auth."""

from __future__ import annotations

import base64
import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.events.helpers import cloudevent

pytestmark = pytest.mark.django_db(transaction=True)
CE_JSON = "application/cloudevents+json"
CE_BATCH = "application/cloudevents-batch+json"


def post(api, body, content_type="application/json", path="/api/v1/events", **extra):
    return api.post(path, json.dumps(body), content_type=content_type, **extra)


def test_structured_append_returns_the_stored_event(api):
    event = cloudevent("workflow.created", workflowid="w1", data={"name": "hello"})
    response = post(api, event, CE_JSON)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["stream"] == "workflow-w1" and body["version"] == 0
    assert body["position"] > 0 and body["recordedtime"].endswith("Z")
    assert body["data"] == {"name": "hello"}
    again = post(api, event, CE_JSON)
    assert again.status_code == 200 and again.json()["position"] == body["position"]


def test_binary_mode(api):
    response = api.post(
        "/api/v1/events",
        b'{"ok": true}',
        content_type="application/json",
        HTTP_CE_SPECVERSION="1.0",
        HTTP_CE_ID="bin-1",
        HTTP_CE_SOURCE="/svc%2Fworker",
        HTTP_CE_TYPE="task.completed",
        HTTP_CE_EXECUTIONID="x9",
        HTTP_CE_TRACEPARENT="00-abc",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["source"] == "/svc/worker" and body["data"] == {"ok": True}
    assert body["stream"] == "execution-x9" and body["traceparent"] == "00-abc"
    text = api.post(
        "/api/v1/events", b"\x00\x01binary", content_type="application/octet-stream",
        HTTP_CE_SPECVERSION="1.0", HTTP_CE_ID="bin-2", HTTP_CE_SOURCE="/s", HTTP_CE_TYPE="blob.put",
    )  # fmt: skip
    assert text.status_code == 201 and text.json()["data_base64"] == "AAFiaW5hcnk="
    fetched = api.get("/api/v1/events/bin-2").json()
    assert (
        fetched["data_base64"] == "AAFiaW5hcnk=" and fetched["datacontenttype"] == "application/octet-stream"
    )


def test_binary_data_is_bounded_by_the_body_not_by_an_attributes_length(api):
    """data_base64 was checked as an attribute (2,048 characters): ~1.5 kB of binary data at most."""
    blob = bytes(range(256)) * 40  # 10 kB
    binary = api.post(
        "/api/v1/events", blob, content_type="application/octet-stream",
        HTTP_CE_SPECVERSION="1.0", HTTP_CE_ID="bin-big-1", HTTP_CE_SOURCE="/s", HTTP_CE_TYPE="blob.put",
    )  # fmt: skip
    assert binary.status_code == 201, binary.content
    assert base64.b64decode(api.get("/api/v1/events/bin-big-1").json()["data_base64"]) == blob
    structured = post(api, cloudevent(data_base64=base64.b64encode(blob).decode()))
    assert structured.status_code == 201, structured.content


@pytest.mark.parametrize("content_type", [CE_BATCH, "application/json"])
def test_batch_append(api, content_type):
    events = [cloudevent(executionid="b1") for _ in range(3)]
    response = post(api, events, content_type)
    assert response.status_code == 201
    stored = response.json()["events"]
    assert [e["version"] for e in stored] == [0, 1, 2]


def test_explicit_stream_and_expected_version(api):
    response = post(api, cloudevent(), path="/api/v1/events?stream=orders-7&expected_version=no_stream")
    assert response.status_code == 201 and response.json()["stream"] == "orders-7"
    stale = post(api, cloudevent(), path="/api/v1/streams/orders-7/events?expected_version=no_stream")
    assert stale.status_code == 409
    assert stale.json() == {
        "error": "wrong_expected_version",
        "message": "stream 'orders-7' is at version 0, expected no_stream",
        "stream": "orders-7",
        "expected_version": "no_stream",
        "actual_version": 0,
    }
    ok = post(api, [cloudevent(), cloudevent()], path="/api/v1/streams/orders-7/events?expected_version=0")
    assert ok.status_code == 201 and [e["version"] for e in ok.json()["events"]] == [1, 2]


def test_global_log_cursor_and_filters(api):
    stored = post(api, [cloudevent("workflow.created", workflowid="w1"), cloudevent("task.started", executionid="e1"),
               cloudevent("task.completed", executionid="e1", tenantid="t1"), cloudevent("other.thing")])  # fmt: skip
    # min_position: other transactions on the cluster may hold the horizon back for a moment.
    last = stored.json()["events"][-1]["position"]
    page = api.get(f"/api/v1/events?limit=2&min_position={last}").json()
    assert [e["type"] for e in page["events"]] == ["workflow.created", "task.started"]
    rest = api.get(page["next"]).json()
    assert [e["type"] for e in rest["events"]] == ["task.completed", "other.thing"]
    assert rest["next_after"] == rest["horizon"]

    def types(query):
        return [e["type"] for e in api.get(f"/api/v1/events?{query}&min_position={last}").json()["events"]]

    assert types("type=task.*") == ["task.started", "task.completed"]
    assert types("type=workflow.created&type=other.thing") == ["workflow.created", "other.thing"]
    assert types("type=task.completed,workflow.created") == ["workflow.created", "task.completed"]
    assert types("executionid=e1&tenantid=t1") == ["task.completed"]
    assert types("category=workflow") == ["workflow.created"]
    assert types("stream=execution-e1") == ["task.started", "task.completed"]
    assert types("since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z") == []
    assert len(types("since=2000-01-01T00:00:00Z")) == 4


def test_min_position_reads_your_writes(api):
    stored = post(api, cloudevent()).json()
    page = api.get(f"/api/v1/events?min_position={stored['position']}").json()
    assert page["events"][-1]["position"] == stored["position"]


def test_get_event_by_id_and_ambiguity(api):
    post(api, cloudevent(id="same", source="/a"))
    post(api, cloudevent(id="same", source="/b"))
    post(api, cloudevent(id="only"))
    assert api.get("/api/v1/events/only").status_code == 200
    ambiguous = api.get("/api/v1/events/same")
    assert ambiguous.status_code == 409 and ambiguous.json()["sources"] == ["/a", "/b"]
    assert api.get("/api/v1/events/same?source=/b").json()["source"] == "/b"
    missing = api.get("/api/v1/events/nope")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_stream_reads(api):
    post(api, [cloudevent() for _ in range(5)], path="/api/v1/streams/s-1/events")
    forward = api.get("/api/v1/streams/s-1/events?limit=2").json()
    assert [e["version"] for e in forward["events"]] == [0, 1] and forward["next_version"] == 2
    tail = api.get("/api/v1/streams/s-1/events?from_version=2").json()
    assert [e["version"] for e in tail["events"]] == [2, 3, 4] and tail["next_version"] is None
    back = api.get("/api/v1/streams/s-1/events?direction=backward&limit=2").json()
    assert [e["version"] for e in back["events"]] == [4, 3] and back["next_version"] == 2
    assert api.get("/api/v1/streams/nope/events").status_code == 404


def test_streams_lifecycle(api, admin_api):
    created = api.post("/api/v1/streams", {"name": "cart-9", "max_count": 2}, format="json")
    assert created.status_code == 201 and created.json()["max_count"] == 2
    assert api.post("/api/v1/streams", {"name": "cart-9"}, format="json").status_code == 409
    post(api, [cloudevent() for _ in range(3)], path="/api/v1/streams/cart-9/events")
    assert [e["version"] for e in api.get("/api/v1/streams/cart-9/events").json()["events"]] == [1, 2]
    listing = api.get("/api/v1/streams?category=cart").json()
    assert [s["name"] for s in listing["streams"]] == ["cart-9"]
    assert listing["streams"][0]["last_version"] == 2
    assert api.delete("/api/v1/streams/cart-9").status_code == 403  # needs admin
    assert admin_api.delete("/api/v1/streams/cart-9").status_code == 204
    gone = api.get("/api/v1/streams/cart-9/events")
    assert gone.status_code == 410 and gone.json()["error"] == "stream_deleted"
    assert api.get("/api/v1/streams/cart-9").json()["deleted"] is True
    refused = post(api, cloudevent(), path="/api/v1/streams/cart-9/events")
    assert refused.status_code == 410
    assert api.get("/api/v1/streams").json()["streams"] == []
    assert api.get("/api/v1/streams?include_deleted=true").json()["streams"][0]["name"] == "cart-9"
    assert api.post("/api/v1/streams", {"name": "cart-9"}, format="json").status_code == 201
    assert post(api, cloudevent(), path="/api/v1/streams/cart-9/events").json()["version"] == 3
    assert admin_api.delete("/api/v1/streams/nope").status_code == 404


def test_streams_are_listed_in_code_point_order_whatever_the_servers_locale(api):
    """Stream names (and the log's other identifiers) compare as bytes, ``COLLATE "C"``: in a
    linguistic locale such as en-US, ``apple-1`` would sort before ``Zed-1``. A server whose
    default is ``C.UTF-8`` sorts the same either way, hence the look at the columns too."""
    from django.db import connection

    for name in ("apple-1", "Zed-1", "Apple-2"):
        assert api.post("/api/v1/streams", {"name": name}, format="json").status_code == 201
    assert [s["name"] for s in api.get("/api/v1/streams").json()["streams"]] == [
        "Apple-2",
        "Zed-1",
        "apple-1",
    ]
    assert [s["name"] for s in api.get("/api/v1/streams?after=Zed-1").json()["streams"]] == ["apple-1"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attrelid::regclass::text || '.' || attname, collname FROM pg_attribute "
            "JOIN pg_collation c ON c.oid = attcollation "
            "WHERE attrelid IN ('flunq_events'::regclass, 'flunq_streams'::regclass) "
            "AND attname IN ('stream', 'id', 'source', 'type', 'tenantid', 'workflowid', 'correlationid', 'name')"
        )
        assert {collation for _, collation in cursor.fetchall()} == {"C"} and cursor.rowcount == 8


def test_auth_is_required_and_scoped(make_token):
    anonymous = APIClient()
    response = anonymous.get("/api/v1/events")
    assert response.status_code == 401 and response.json()["error"] == "unauthenticated"
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer flq_nope")
    assert bad.get("/api/v1/events").status_code == 401
    malformed = APIClient()
    malformed.credentials(HTTP_AUTHORIZATION="Basic abc")
    assert malformed.get("/api/v1/events").status_code == 401
    reader = APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(['events:read'])}")
    assert reader.get("/api/v1/events").status_code == 200
    denied = post(reader, cloudevent())
    assert denied.status_code == 403 and "events:write" in denied.json()["message"]


@pytest.mark.parametrize(
    "path", ["/api/v1/events", "/api/v1/streams", "/api/v1/schemas", "/api/v1/subscriptions",
             "/api/v1/streams/s-1/snapshots"],
)  # fmt: skip
def test_head_and_options_need_what_get_needs(make_token, path):
    """Views name a scope per method; HEAD and OPTIONS fell to admin where a view named only GET."""
    reader = APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(['events:read'])}")
    assert reader.get(path).status_code in (200, 404)
    assert reader.head(path).status_code in (200, 404)
    assert reader.options(path).status_code == 200
    nobody = APIClient()
    nobody.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(['events:write'])}")
    assert nobody.head(path).status_code == 403


def test_auth_can_be_turned_off(settings):
    settings.AUTH_REQUIRED = False
    assert APIClient().get("/api/v1/events").status_code == 200


def test_health_and_schema(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"]["ok"] is True
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/v1/events" in schema.content
    assert b"bearerAuth" in schema.content and b"scheme: bearer" in schema.content  # /api/docs/ can authorize
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_answer_other_methods_with_a_json_405(path):
    client = Client(enforce_csrf_checks=True)  # as a real server: no CSRF page before the 405
    for method in ("post", "put", "delete"):
        response = getattr(client, method)(path)
        assert response.status_code == 405 and response.json()["error"] == "method_not_allowed", method
        assert response["Allow"] == "GET, HEAD"
    assert client.head(path).status_code == 200


def test_create_token_command_prints_only_the_token(capsys):
    from django.core.management import call_command

    from access.tokens import authenticate_token

    call_command("create_token", "ci", "--scope", "events:read", "--tenant", "acme")
    token = capsys.readouterr().out.strip()
    assert token.startswith("flq_") and "\n" not in token
    principal = authenticate_token(token)
    assert principal.scopes == frozenset({"events:read"}) and principal.tenant == "acme"


@pytest.mark.parametrize(
    "args", [["x" * 201], [""], ["a\nb"], ["ok", "--tenant", ""], ["ok", "--tenant", "t" * 201]]
)
def test_create_token_refuses_names_and_tenants_it_cannot_store(args):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="1 to 200 printable characters"):
        call_command("create_token", *args)
