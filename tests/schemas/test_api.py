"""The registry's own REST API under /api/v1/schemas: happy paths, auth, and every kind of bad input."""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

V1 = {"type": "object", "properties": {"name": {"type": "string"}}, "additionalProperties": False}
V2 = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
      "additionalProperties": False}  # fmt: skip
NEEDS_AGE = {**V2, "required": ["age"]}


@pytest.fixture
def reader(make_token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(['events:read'])}")
    return client


def test_register_read_and_delete(admin_api, reader):
    created = admin_api.post("/api/v1/schemas", {"subject": "order.placed", "schema": V1}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["subject"], body["version"], body["created"], body["schema"]) == (
        "order.placed",
        1,
        True,
        V1,
    )
    again = admin_api.post("/api/v1/schemas/order.placed/versions", {"schema": V1}, format="json")
    assert again.status_code == 200 and again.json()["created"] is False and again.json()["id"] == body["id"]
    second = admin_api.post("/api/v1/schemas/order.placed/versions", {"schema": V2}, format="json")
    assert second.status_code == 201 and second.json()["version"] == 2

    listing = reader.get("/api/v1/schemas").json()
    assert [s["subject"] for s in listing["subjects"]] == ["order.placed"]
    assert listing["subjects"][0]["latest_version"] == 2
    assert listing["subjects"][0]["effective_compatibility"] == "BACKWARD"
    detail = reader.get("/api/v1/schemas/order.placed").json()
    assert detail["versions"] == [1, 2] and detail["validate"] is True
    versions = reader.get("/api/v1/schemas/order.placed/versions").json()["versions"]
    assert [v["version"] for v in versions] == [1, 2] and "schema" not in versions[0]
    assert reader.get("/api/v1/schemas/order.placed/versions/latest").json()["schema"] == V2
    assert reader.get("/api/v1/schemas/order.placed/versions/1").json()["schema"] == V1

    deleted = admin_api.delete("/api/v1/schemas/order.placed/versions/2")
    assert deleted.status_code == 200 and deleted.json()["deleted_version"] == 2
    assert reader.get("/api/v1/schemas/order.placed/versions/2").status_code == 404
    shown = reader.get("/api/v1/schemas/order.placed/versions/2?include_deleted=true").json()
    assert shown["deleted"] is True
    assert admin_api.delete("/api/v1/schemas/order.placed/versions/2?permanent=true").status_code == 200
    assert admin_api.delete("/api/v1/schemas/order.placed").json()["deleted_versions"] == [1]
    assert reader.get("/api/v1/schemas").json()["subjects"] == []
    assert len(reader.get("/api/v1/schemas?include_deleted=true").json()["subjects"]) == 1
    assert admin_api.delete("/api/v1/schemas/order.placed?permanent=true").json()["deleted_versions"] == [1]
    assert reader.get("/api/v1/schemas/order.placed?include_deleted=true").status_code == 404


def test_incompatible_registration_is_409_with_differences(admin_api):
    admin_api.post("/api/v1/schemas", {"subject": "order.placed", "schema": V1}, format="json")
    response = admin_api.post("/api/v1/schemas/order.placed/versions", {"schema": NEEDS_AGE}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "incompatible_schema" and body["mode"] == "BACKWARD"
    assert body["differences"][0]["version"] == 1
    assert {"pointer", "kind", "message", "direction"} <= set(body["differences"][0])


def test_compatibility_check_and_config(admin_api, reader):
    admin_api.post("/api/v1/schemas", {"subject": "order.placed", "schema": V1}, format="json")
    url = "/api/v1/schemas/order.placed/compatibility"
    needs_name = {**V1, "required": ["name"]}  # old data may lack a name; old readers accept new data
    verdict = reader.post(url, {"schema": needs_name}, format="json").json()
    assert verdict["compatible"] is False and verdict["differences"] and verdict["checked_versions"] == [1]
    assert (
        reader.post(url, {"schema": needs_name, "mode": "FORWARD"}, format="json").json()["compatible"]
        is True
    )
    assert reader.post(url, {"schema": V2, "version": "latest"}, format="json").json()["compatible"] is True
    # A subject with no versions accepts anything.
    assert reader.post("/api/v1/schemas/new.one/compatibility", {"schema": V1}, format="json").json()[
        "compatible"
    ]

    config = reader.get("/api/v1/schemas/order.placed/config").json()
    assert config == {"subject": "order.placed", "compatibility": None, "effective_compatibility": "BACKWARD",
                      "validate": True}  # fmt: skip
    changed = admin_api.put("/api/v1/schemas/order.placed/config", {"compatibility": "none", "validate": False},
                            format="json")  # fmt: skip
    assert changed.status_code == 200
    assert changed.json()["compatibility"] == "NONE" and changed.json()["validate"] is False
    assert (
        admin_api.post(
            "/api/v1/schemas/order.placed/versions", {"schema": NEEDS_AGE}, format="json"
        ).status_code
        == 201
    )
    reset = admin_api.put(
        "/api/v1/schemas/order.placed/config", {"compatibility": None}, format="json"
    ).json()
    assert reset["compatibility"] is None and reset["effective_compatibility"] == "BACKWARD"


def test_auth(client, reader, api):
    assert client.get("/api/v1/schemas").status_code == 401
    assert reader.post("/api/v1/schemas", {"subject": "a", "schema": {}}, format="json").status_code == 403
    assert api.post("/api/v1/schemas", {"subject": "a", "schema": {}}, format="json").status_code == 403
    assert reader.put("/api/v1/schemas/a/config", {"validate": False}, format="json").status_code == 403
    assert reader.delete("/api/v1/schemas/a").status_code == 403
    assert reader.post("/api/v1/schemas/a/compatibility", {"schema": {}}, format="json").status_code == 200


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "error"),
    [
        ("post", "/api/v1/schemas", [1], 400, "invalid_request"),
        ("post", "/api/v1/schemas", {"subject": "a"}, 400, "invalid_request"),
        ("post", "/api/v1/schemas", {"subject": "a", "schema": {}, "extra": 1}, 400, "invalid_request"),
        ("post", "/api/v1/schemas", {"subject": "", "schema": {}}, 422, "invalid_subject"),
        ("post", "/api/v1/schemas", {"subject": 5, "schema": {}}, 422, "invalid_subject"),
        ("post", "/api/v1/schemas", {"subject": "a", "schema": "{}"}, 422, "invalid_schema"),
        ("post", "/api/v1/schemas", {"subject": "a", "schema": {"type": "nope"}}, 422, "invalid_schema"),
        ("post", "/api/v1/schemas", {"subject": "a", "schema": {"$schema": "http://json-schema.org/draft-04/schema#"}},
         422, "invalid_schema"),
        ("post", "/api/v1/schemas", {"subject": "a", "schema": {"$ref": "https://example.com/s.json"}}, 422,
         "invalid_schema"),
        ("post", "/api/v1/schemas/a/versions", {}, 400, "invalid_request"),
        ("post", "/api/v1/schemas/a/versions", {"schema": {"pattern": "("}}, 422, "invalid_schema"),
        ("post", "/api/v1/schemas?x=1", {"subject": "a", "schema": {}}, 400, "invalid_request"),
        ("get", "/api/v1/schemas?limit=0", None, 400, "invalid_request"),
        ("get", "/api/v1/schemas?include_deleted=maybe", None, 400, "invalid_request"),
        ("get", "/api/v1/schemas?bogus=1", None, 400, "invalid_request"),
        ("get", "/api/v1/schemas/missing", None, 404, "subject_not_found"),
        ("get", "/api/v1/schemas/known?include_deleted=2", None, 400, "invalid_request"),
        ("get", "/api/v1/schemas/known/versions?include_deleted=x", None, 400, "invalid_request"),
        ("get", "/api/v1/schemas/known/versions/1?colour=red", None, 400, "invalid_request"),
        ("get", "/api/v1/schemas/known/config?x=1", None, 400, "invalid_request"),
        ("get", "/api/v1/schemas/%20known/config", None, 422, "invalid_subject"),
        ("put", "/api/v1/schemas/%20known/config", {"validate": True}, 422, "invalid_subject"),
        ("post", "/api/v1/schemas/%20x/versions", {"schema": {}}, 422, "invalid_subject"),
        ("get", "/api/v1/schemas/missing/versions", None, 404, "subject_not_found"),
        ("get", "/api/v1/schemas/missing/versions/1", None, 404, "subject_not_found"),
        ("get", "/api/v1/schemas/known/versions/9", None, 404, "version_not_found"),
        ("get", "/api/v1/schemas/known/versions/0", None, 422, "invalid_version"),
        ("get", "/api/v1/schemas/known/versions/first", None, 422, "invalid_version"),
        ("get", "/api/v1/schemas/known/versions/%C2%B2", None, 422, "invalid_version"),
        ("delete", "/api/v1/schemas/known/versions/%EF%BC%91", None, 422, "invalid_version"),
        ("post", "/api/v1/schemas/known/compatibility", {"schema": {}, "version": "\u00b2"}, 422, "invalid_version"),
        ("delete", "/api/v1/schemas/known/versions/99999999999", None, 422, "invalid_version"),
        ("delete", "/api/v1/schemas/missing", None, 404, "subject_not_found"),
        ("delete", "/api/v1/schemas/known?permanent=true", None, 404, "subject_not_soft_deleted"),
        ("delete", "/api/v1/schemas/known/versions/1?permanent=true", None, 404, "version_not_soft_deleted"),
        ("delete", "/api/v1/schemas/known?permanent=perhaps", None, 400, "invalid_request"),
        ("post", "/api/v1/schemas/known/compatibility", {"schema": {}, "mode": "SIDEWAYS"}, 422,
         "invalid_compatibility"),
        ("post", "/api/v1/schemas/known/compatibility", {"schema": {}, "version": 9}, 404, "version_not_found"),
        ("post", "/api/v1/schemas/known/compatibility", {"schema": {}, "version": "x"}, 422, "invalid_version"),
        ("post", "/api/v1/schemas/known/compatibility", {"schema": []}, 422, "invalid_schema"),
        ("post", "/api/v1/schemas/known/compatibility", {"candidate": {}}, 400, "invalid_request"),
        ("put", "/api/v1/schemas/known/config", {}, 400, "invalid_request"),
        ("put", "/api/v1/schemas/known/config", {"compatibility": "SOMETIMES"}, 422, "invalid_compatibility"),
        ("put", "/api/v1/schemas/known/config", {"validate": "yes"}, 400, "invalid_request"),
        ("put", "/api/v1/schemas/known/config", {"colour": "red"}, 400, "invalid_request"),
        ("put", "/api/v1/schemas/known/config", "BACKWARD", 400, "invalid_request"),
    ],
)  # fmt: skip
def test_bad_input(admin_api, method, url, body, status, error):
    admin_api.post("/api/v1/schemas", {"subject": "known", "schema": V1}, format="json")
    response = (
        getattr(admin_api, method)(url, body, format="json")
        if body is not None
        else getattr(admin_api, method)(url)
    )
    assert response.status_code == status, response.json()
    assert response.json()["error"] == error
    assert response.json()["message"]


def test_malformed_json_and_deep_or_huge_schemas(admin_api, settings):
    response = admin_api.post(
        "/api/v1/schemas", b'{"subject": "a", "schema": {', content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    settings.SCHEMA_MAX_DEPTH = 8
    deep: dict = {}
    for _ in range(10):
        deep = {"properties": {"a": deep}}
    response = admin_api.post("/api/v1/schemas", {"subject": "a", "schema": deep}, format="json")
    assert response.status_code == 422 and "deeper than 8" in response.json()["message"]
    settings.SCHEMA_MAX_BYTES = 2000
    huge = {"properties": {f"p{i}": {"type": "string"} for i in range(200)}}
    response = admin_api.post("/api/v1/schemas", {"subject": "a", "schema": huge}, format="json")
    assert response.status_code == 422 and "at most 2000" in response.json()["message"]


def _written_around_the_registry(name: str, document: dict) -> None:
    """A version as an older release could have stored it, without today's checks."""
    from schemas import documents
    from schemas.models import Schema, SchemaVersion, Subject

    text = documents.canonical(document)
    schema = Schema.objects.create(canonical=text, fingerprint=documents.fingerprint(text), document=document)
    SchemaVersion.objects.create(
        subject=Subject.objects.create(name=name, last_version=1), version=1, schema=schema
    )


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({"$defs": {"a": {"$ref": "#/$defs/a", "type": "string"}}, "$ref": "#/$defs/a"}, "unguarded recursive"),
        ({"$ref": "#", "type": "string"}, "unguarded recursive"),
        ({"$ref": "#/$defs/x/type", "$defs": {"x": {"type": "string"}}}, "does not point at a schema"),
        ({"$defs": {"x": {"type": "string"}},
          "properties": {"a": {"$id": "http://example.com/sub", "$ref": "#/$defs/x"}}}, "does not resolve"),
    ],
)  # fmt: skip
def test_schemas_that_could_never_validate_are_refused(admin_api, document, words):
    response = admin_api.post("/api/v1/schemas", {"subject": "loop", "schema": document}, format="json")
    assert response.status_code == 422, response.json()
    assert response.json()["error"] == "invalid_schema" and words in response.json()["message"]


def test_a_registered_version_the_checker_loops_on_is_422(admin_api, reader):
    _written_around_the_registry("loop", {"oneOf": [{"const": None}, {"$ref": "#"}]})
    candidate = {"schema": {"type": "object"}, "mode": "FULL"}
    checked = reader.post("/api/v1/schemas/loop/compatibility", candidate, format="json")
    registered = admin_api.post(
        "/api/v1/schemas", {"subject": "loop", "schema": {"type": "object"}}, format="json"
    )
    for response in (checked, registered):
        assert response.status_code == 422, response.json()
        assert response.json()["error"] == "invalid_schema"
        assert "unguarded recursive $ref" in response.json()["message"]


def test_c1_control_characters_in_subject_names_are_refused(admin_api):
    response = admin_api.post("/api/v1/schemas/a%C2%85b/versions", {"schema": {}}, format="json")
    assert (response.status_code, response.json()["error"]) == (422, "invalid_subject")
    response = admin_api.post("/api/v1/schemas", {"subject": "a\u009fb", "schema": {}}, format="json")
    assert (response.status_code, response.json()["error"]) == (422, "invalid_subject")


def test_compatibility_check_matches_patterns_in_linear_time(admin_api, reader):
    # Python's re needs about 2**n steps for ^(a+)+$ against "a" * n + "!" (a minute at n = 29).
    admin_api.post("/api/v1/schemas", {"subject": "s", "schema": {"type": "object", "properties": {"x": {}}}},
                   format="json")  # fmt: skip
    candidate = {"type": "object", "properties": {"a" * 27 + "!": {"type": "string"}},
                 "patternProperties": {"^(a+)+$": {"type": "integer"}}}  # fmt: skip
    started = time.perf_counter()
    response = reader.post(
        "/api/v1/schemas/s/compatibility", {"schema": candidate, "mode": "FULL"}, format="json"
    )
    assert time.perf_counter() - started < 2
    assert response.status_code == 200 and response.json()["compatible"] is False


def test_a_comparison_past_the_work_budget_is_422(admin_api, reader):
    old = {"type": "object", "properties": {f"n{i}": {"type": "string"} for i in range(3000)}}
    admin_api.post("/api/v1/schemas", {"subject": "s", "schema": old}, format="json")
    candidate = {"type": "object", "properties": {f"c{i}": {"type": "integer"} for i in range(1500)},
                 "patternProperties": {f"^z{i}$": {"type": "integer"} for i in range(1500)}}  # fmt: skip
    started = time.perf_counter()
    checked = reader.post(
        "/api/v1/schemas/s/compatibility", {"schema": candidate, "mode": "FULL"}, format="json"
    )
    registered = admin_api.post("/api/v1/schemas/s/versions", {"schema": candidate}, format="json")
    assert time.perf_counter() - started < 10
    for response in (checked, registered):
        assert response.status_code == 422, response.json()
        assert response.json()["error"] == "invalid_schema"
        assert "too complex to compare" in response.json()["message"]
