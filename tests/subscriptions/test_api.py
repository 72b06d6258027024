"""The subscriptions REST API: shapes, scopes, tenants, and a 4xx naming the problem for bad input."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from tests.subscriptions.conftest import append_to, caught_up

pytestmark = pytest.mark.django_db

URL = "/api/v1/subscriptions"


def client(make_token, scopes=("events:read", "events:write"), tenant=None) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(scopes, tenant)}")
    return api


def pull_sub(api, **extra) -> dict:
    response = api.post(URL, {"name": "p", "kind": "pull", **extra}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_create_list_get_patch_delete(api, allow_local):
    created = api.post(
        URL,
        {
            "name": "hooks",
            "kind": "webhook",
            "url": "http://127.0.0.1:9/x",
            "filter": {"types": ["task.*", "workflow.created"], "category": "execution"},
            "start": "beginning",
            "retry": {"max_attempts": 3, "backoff": [1, 10]},
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert body["filter"]["types"] == ["task.*", "workflow.created"] and body["retry"]["max_attempts"] == 3
    assert set(body["progress"]) >= {"checkpoint", "lag", "pending", "delivered", "dead_lettered"}
    listed = api.get(URL).json()["subscriptions"]
    assert [s["id"] for s in listed] == [body["id"]] and "secret" not in listed[0]
    patched = api.patch(f"{URL}/{body['id']}", {"state": "paused", "name": "renamed"}, format="json")
    assert patched.status_code == 200 and patched.json()["state"] == "paused"
    assert api.get(URL, {"state": "paused"}).json()["subscriptions"][0]["name"] == "renamed"
    assert api.delete(f"{URL}/{body['id']}").status_code == 204
    assert api.get(f"{URL}/{body['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "kind": "pull", "colour": "red"}, None),
        ({"name": "x", "kind": "smoke"}, "kind"),
        ({"kind": "pull"}, "name"),
        ({"name": "", "kind": "pull"}, "name"),
        ({"name": 5, "kind": "pull"}, "name"),
        ({"name": "x", "kind": "webhook"}, "url"),
        ({"name": "x", "kind": "webhook", "url": "ftp://example.com/"}, "url"),
        ({"name": "x", "kind": "webhook", "url": "http://"}, "url"),
        ({"name": "x", "kind": "webhook", "url": 42}, "url"),
        ({"name": "x", "kind": "pull", "url": "http://example.com/"}, "url"),
        ({"name": "x", "kind": "pull", "filter": {"typo": "a"}}, "filter"),
        ({"name": "x", "kind": "pull", "filter": ["task.*"]}, "filter"),
        ({"name": "x", "kind": "pull", "filter": {"types": [1]}}, "filter/types/0"),
        ({"name": "x", "kind": "pull", "filter": {"types": ["ta*sk"]}}, "filter/types/0"),
        ({"name": "x", "kind": "pull", "filter": {"stream": ""}}, "filter/stream"),
        ({"name": "x", "kind": "pull", "start": "yesterday"}, "start"),
        ({"name": "x", "kind": "pull", "start": -1}, "start"),
        ({"name": "x", "kind": "pull", "start": "\u00b2"}, "start"),  # a digit to isdigit, not to int
        ({"name": "x", "kind": "pull", "start": "9" * 5000}, "start"),
        ({"name": "x", "kind": "pull", "start": 2**70}, None),  # refused by the JSON parser
        ({"name": "x", "kind": "pull", "retry": {"max_attempts": 0}}, "retry/max_attempts"),
        ({"name": "x", "kind": "pull", "retry": {"backoff": []}}, "retry/backoff"),
        ({"name": "x", "kind": "pull", "retry": {"backoff": [-1]}}, "retry/backoff/0"),
        ({"name": "x", "kind": "pull", "retry": {"tries": 3}}, "retry"),
        ({"name": "x", "kind": "pull", "lease_seconds": 0}, "lease_seconds"),
        ({"name": "x", "kind": "pull", "lease_seconds": "long"}, "lease_seconds"),
        ({"name": "x", "kind": "pull", "state": "disabled"}, "state"),
    ],
)
def test_create_refuses_bad_input(api, body, field):
    response = api.post(URL, body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["message"]
    if field is not None:
        assert response.json()["field"] == field
    assert api.get(URL).json()["subscriptions"] == []  # nothing written


def test_create_refuses_non_objects_and_bad_json(api):
    assert api.post(URL, [1, 2], format="json").status_code == 400
    response = api.post(URL, b'{"name": NaN}', content_type="application/json")
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_duplicate_names_conflict(api):
    pull_sub(api)
    response = api.post(URL, {"name": "p", "kind": "pull"}, format="json")
    assert response.status_code == 409 and response.json()["field"] == "name"


def test_the_disabled_reason_goes_when_the_state_leaves_disabled(api):
    sub = pull_sub(api)
    disabled = api.patch(f"{URL}/{sub['id']}", {"state": "disabled"}, format="json").json()
    assert disabled["disabled_reason"] == "disabled by request"
    paused = api.patch(f"{URL}/{sub['id']}", {"state": "paused"}, format="json").json()
    assert (paused["state"], paused["disabled_reason"]) == ("paused", None)


def test_a_name_taken_at_the_same_time_conflicts(api, monkeypatch):
    """Two requests can both pass the check before the insert; the unique index decides (409)."""
    from subscriptions import services

    monkeypatch.setattr(services, "_unique_name", lambda *args, **kwargs: None)
    pull_sub(api)
    response = api.post(URL, {"name": "p", "kind": "pull"}, format="json")
    assert response.status_code == 409 and response.json()["field"] == "name"
    other = api.post(URL, {"name": "q", "kind": "pull"}, format="json").json()
    response = api.patch(f"{URL}/{other['id']}", {"name": "p"}, format="json")
    assert response.status_code == 409 and response.json()["field"] == "name"


def test_patch_refuses_bad_input(api):
    sub = pull_sub(api)
    for body, field in [
        ({"kind": "webhook"}, None),
        ({"state": "sleeping"}, "state"),
        ({"url": "http://example.com/"}, "url"),
        ({"filter": {"types": "x*y"}}, "filter/types/0"),
        ({"retry": {"max_attempts": "3"}}, "retry/max_attempts"),
    ]:
        response = api.patch(f"{URL}/{sub['id']}", body, format="json")
        assert response.status_code == 400, (body, response.json())
        if field:
            assert response.json()["field"] == field


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/fetch",
        "/ack",
        "/nack",
        "/dead-letters",
        "/dead-letters/1",
        "/dead-letters/1/redrive",
        "/dead-letters/redrive",
        "/replay",
        "/replays/1",
        "/replays/1/cancel",
    ],
)
@pytest.mark.parametrize("sub_id", ["nope", str(uuid.uuid4())])
def test_unknown_subscriptions_are_404(admin_api, path, sub_id):
    method = "get" if path in ("", "/dead-letters", "/dead-letters/1", "/replays/1") else "post"
    response = getattr(admin_api, method)(f"{URL}/{sub_id}{path}", {}, format="json")
    assert response.status_code == 404, response.json()
    assert response.json()["error"] == "not_found"


def test_unknown_dead_letters_and_replays_are_404(admin_api):
    sub = pull_sub(admin_api)
    for method, path in [
        ("get", "/dead-letters/999"),
        ("delete", "/dead-letters/999"),
        ("post", "/dead-letters/999/redrive"),
        ("get", "/dead-letters/x"),
        ("get", "/replays/999"),
        ("post", "/replays/abc/cancel"),
    ]:
        assert getattr(admin_api, method)(f"{URL}/{sub['id']}{path}").status_code == 404, path


def test_pull_endpoints_refuse_bad_input(api, allow_local):
    sub = pull_sub(api)
    base = f"{URL}/{sub['id']}"
    for path, body, field in [
        ("/fetch", {}, "consumer"),
        ("/fetch", {"consumer": "c", "max_events": 0}, "max_events"),
        ("/fetch", {"consumer": "c", "max_events": 5000}, "max_events"),
        ("/fetch", {"consumer": "c", "lease_seconds": -1}, "lease_seconds"),
        ("/fetch", {"consumer": "bad name!"}, "consumer"),
        ("/fetch", {"consumer": "c\n"}, "consumer"),  # `$` would match before the newline
        ("/fetch", {"consumer": "c", "extra": 1}, None),
        ("/ack", {"consumer": "c"}, "ack_ids"),
        ("/ack", {"consumer": "c", "ack_ids": []}, "ack_ids"),
        ("/ack", {"consumer": "c", "ack_ids": ["x"]}, "ack_ids/0"),
        ("/ack", {"consumer": "c", "ack_ids": ["1-1\n"]}, "ack_ids/0"),
        ("/ack", {"consumer": "c", "ack_ids": [1]}, "ack_ids/0"),
        ("/nack", {"consumer": "c", "ack_ids": ["1-1"], "action": "drop"}, "action"),
        ("/nack", {"consumer": "c", "ack_ids": ["1-1"], "delay_seconds": "soon"}, "delay_seconds"),
        ("/nack", {"consumer": "c", "ack_ids": ["1-1"], "reason": 7}, "reason"),
    ]:
        response = api.post(base + path, body, format="json")
        assert response.status_code == 400, (path, body, response.json())
        if field:
            assert response.json()["field"] == field, (path, body)
    hook = api.post(URL, {"name": "h", "kind": "webhook", "url": "http://127.0.0.1:9/"}, format="json").json()
    assert api.post(f"{URL}/{hook['id']}/fetch", {"consumer": "c"}, format="json").status_code == 409


def test_dead_letter_and_replay_endpoints_refuse_bad_input(admin_api):
    sub = pull_sub(admin_api)
    base = f"{URL}/{sub['id']}"
    for path, body, field in [
        ("/replay", {}, "from"),
        ("/replay", {"from": "last week"}, "from"),
        ("/replay", {"from": "\u00b2"}, "from"),
        ("/replay", {"from": "1", "until": "\uff11"}, "until"),
        ("/replay", {"from": 10, "until": 5}, "until"),
        ("/replay", {"from": 1, "until": "2026-01-01T00:00:00Z"}, "until"),
        ("/replay", {"from": 1, "types": "a*b"}, "types/0"),
        ("/replay", {"from": 1, "since": 1}, None),
        ("/dead-letters/redrive", {"reason": "bored"}, "reason"),
        ("/dead-letters/redrive", {"type": "**"}, "type"),
        ("/dead-letters/redrive", {"since": "noon"}, "since"),
        ("/dead-letters/redrive", {"ids": ["1"]}, "ids"),
        ("/dead-letters/redrive", {"limit": 0}, "limit"),
        ("/dead-letters/redrive", {"subscription": "x"}, None),
    ]:
        response = admin_api.post(base + path, body, format="json")
        assert response.status_code == 400, (path, body, response.json())
        if field:
            assert response.json()["field"] == field, (path, body)
    for query in (
        {"reason": "x"},
        {"since": "soon"},
        {"limit": "0"},
        {"colour": "red"},
        {"after": "x"},
        {"type": "a*b"},
    ):
        assert admin_api.get(f"{base}/dead-letters", query).status_code == 400, query
        assert admin_api.get("/api/v1/dead-letters", query).status_code == 400, query
    assert admin_api.get("/api/v1/dead-letters", {"subscription": "nope"}).status_code == 404
    for path in ("/dead-letters/%C2%B2", "/replays/%C2%B2", "/dead-letters/" + "9" * 30):
        response = admin_api.get(base + path)
        assert response.status_code == 404 and response.json()["message"], path
    for path in ("/dead-letters/%C2%B2/redrive", "/replays/%C2%B2/cancel"):
        assert admin_api.post(base + path, {}, format="json").status_code == 404, path
    assert admin_api.get(URL, {"kind": "push"}).status_code == 400
    assert admin_api.get(URL, {"colour": "red"}).status_code == 400


def test_scopes(make_token):
    reader = client(make_token, ["events:read"])
    writer = client(make_token, ["events:write"])
    admin = client(make_token, ["admin"])
    assert reader.post(URL, {"name": "x", "kind": "pull"}, format="json").status_code == 403
    sub = pull_sub(writer)
    assert writer.get(URL).status_code == 403  # write does not imply read
    assert reader.get(f"{URL}/{sub['id']}").status_code == 200
    assert reader.post(f"{URL}/{sub['id']}/fetch", {"consumer": "c"}, format="json").status_code == 200
    assert reader.delete(f"{URL}/{sub['id']}").status_code == 403
    for path in ("/replay", "/dead-letters/redrive"):
        assert writer.post(f"{URL}/{sub['id']}{path}", {"from": 0}, format="json").status_code == 403
    assert admin.post(f"{URL}/{sub['id']}/dead-letters/redrive", {}, format="json").status_code == 200
    assert APIClient().get(URL).status_code == 401


def test_a_tenant_token_sees_and_makes_only_its_tenant(make_token):
    acme = client(make_token, ["events:read", "events:write"], tenant="acme")
    other = client(make_token, ["events:read", "events:write"], tenant="other")
    everyone = client(make_token, ["events:read", "events:write"])
    sub = pull_sub(acme)
    assert sub["filter"]["tenantid"] == "acme"
    refused = acme.post(URL, {"name": "q", "kind": "pull", "filter": {"tenantid": "other"}}, format="json")
    assert refused.status_code == 400 and refused.json()["field"] == "filter/tenantid"
    patched = acme.patch(f"{URL}/{sub['id']}", {"filter": {"types": ["task.*"]}}, format="json")
    assert patched.json()["filter"]["tenantid"] == "acme"
    assert other.get(f"{URL}/{sub['id']}").status_code == 404
    assert other.get(URL).json()["subscriptions"] == []
    assert other.delete(f"{URL}/{sub['id']}").status_code == 404
    assert [s["id"] for s in everyone.get(URL).json()["subscriptions"]] == [sub["id"]]
    # Same name in another tenant is fine.
    assert other.post(URL, {"name": "p", "kind": "pull"}, format="json").status_code == 201


@pytest.mark.django_db(transaction=True)
def test_tenant_subscription_receives_only_its_tenant(make_token):
    acme = client(make_token, ["events:read", "events:write"], tenant="acme")
    sub = pull_sub(acme, start="beginning")
    append_to("t-1", 1, tenantid="other")
    mine = append_to("t-1", 1, tenantid="acme")
    caught_up()
    got = acme.post(f"{URL}/{sub['id']}/fetch", {"consumer": "c"}, format="json").json()["messages"]
    assert [m["event"]["position"] for m in got] == mine


def test_global_dead_letter_list_filters(admin_api):
    response = admin_api.get("/api/v1/dead-letters", {"reason": "parked", "type": "task.*", "limit": "5"})
    assert response.status_code == 200 and response.json() == {"dead_letters": [], "next_after": None}


@pytest.mark.django_db(transaction=True)
def test_lag_and_dead_letters_are_exported_as_metrics(api):
    pull_sub(api, name="metered")
    append_to("metrics-1", 2)
    body = api.get("/metrics").content.decode()
    assert 'flunq_subscription_lag_events{subscription="metered"}' in body
    assert 'flunq_subscription_dead_letters{subscription="metered"} 0.0' in body
