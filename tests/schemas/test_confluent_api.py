"""The Confluent Schema Registry shape under /schema-registry/: bodies, codes, media types, auth."""

from __future__ import annotations

import base64
import json

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

MEDIA = "application/vnd.schemaregistry.v1+json"
PREFIX = "/schema-registry"
V1 = {"type": "object", "properties": {"name": {"type": "string"}}, "additionalProperties": False}
V2 = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
      "additionalProperties": False}  # fmt: skip
NEEDS_AGE = {**V2, "required": ["age"]}


def schema_body(document, **extra) -> dict:
    return {"schema": json.dumps(document), "schemaType": "JSON", **extra}


class Registry:
    """A thin client speaking the registry's media type."""

    def __init__(self, client: APIClient) -> None:
        self.client = client

    def call(self, method: str, path: str, body=None, content_type: str = MEDIA):
        kwargs = {}
        if body is not None:
            kwargs = {
                "data": body if isinstance(body, bytes | str) else json.dumps(body),
                "content_type": content_type,
            }
        response = getattr(self.client, method)(
            PREFIX + path, HTTP_ACCEPT=f"{MEDIA}, application/json", **kwargs
        )
        return response.status_code, response.json() if response.content else None


@pytest.fixture
def registry(admin_api) -> Registry:
    return Registry(admin_api)


@pytest.fixture
def reader(make_token) -> Registry:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(['events:read'])}")
    return Registry(client)


def test_register_look_up_and_read(registry):
    status, body = registry.call("post", "/subjects/orders-value/versions", schema_body(V1))
    assert (status, set(body)) == (200, {"id"})
    schema_id = body["id"]
    assert registry.call("post", "/subjects/other/versions", schema_body(V1)) == (200, {"id": schema_id})
    assert registry.call("post", "/subjects/orders-value/versions", schema_body(V1)) == (
        200,
        {"id": schema_id},
    )
    status, second = registry.call("post", "/subjects/orders-value/versions", schema_body(V2))
    assert status == 200 and second["id"] != schema_id

    assert registry.call("get", "/subjects") == (200, ["orders-value", "other"])
    assert registry.call("get", "/subjects?subjectPrefix=ord") == (200, ["orders-value"])
    assert registry.call("get", "/subjects/orders-value/versions") == (200, [1, 2])
    status, latest = registry.call("get", "/subjects/orders-value/versions/latest")
    assert latest == {"subject": "orders-value", "version": 2, "id": second["id"], "schemaType": "JSON",
                      "schema": latest["schema"]}  # fmt: skip
    assert json.loads(latest["schema"]) == V2
    assert registry.call("get", "/subjects/orders-value/versions/-1")[1]["version"] == 2
    assert registry.call("get", "/subjects/orders-value/versions/1/schema") == (200, V1)
    status, by_id = registry.call("get", f"/schemas/ids/{schema_id}")
    assert status == 200 and by_id["schemaType"] == "JSON" and json.loads(by_id["schema"]) == V1
    assert registry.call("get", f"/schemas/ids/{schema_id}/schema") == (200, V1)
    assert registry.call("get", f"/schemas/ids/{schema_id}/subjects") == (200, ["orders-value", "other"])
    assert registry.call("get", f"/schemas/ids/{schema_id}/versions") == (
        200, [{"subject": "orders-value", "version": 1}, {"subject": "other", "version": 1}])  # fmt: skip
    assert registry.call("get", "/schemas/types") == (200, ["JSON"])
    assert registry.call("get", "/") == (200, {})
    assert registry.call("get", "/mode") == (200, {"mode": "READWRITE"})

    status, found = registry.call("post", "/subjects/orders-value", schema_body(V1))
    assert status == 200 and (found["version"], found["id"]) == (1, schema_id)


def test_media_types(registry):
    response = registry.client.post(f"{PREFIX}/subjects/a/versions", json.dumps(schema_body(V1)),
                                    content_type="application/json", HTTP_ACCEPT=MEDIA)  # fmt: skip
    assert response.status_code == 200 and response["Content-Type"] == MEDIA
    response = registry.client.get(f"{PREFIX}/subjects", HTTP_ACCEPT="application/json")
    assert response["Content-Type"] == "application/json"
    response = registry.client.get(f"{PREFIX}/subjects", HTTP_ACCEPT="application/vnd.schemaregistry+json")
    assert response["Content-Type"] == "application/vnd.schemaregistry+json"
    response = registry.client.get(f"{PREFIX}/subjects/none/versions")
    assert response.status_code == 404 and response["Content-Type"] == MEDIA
    assert response.json()["error_code"] == 40401


def test_compatibility_and_config(registry):
    registry.call("post", "/subjects/s/versions", schema_body(V1))
    assert registry.call("post", "/compatibility/subjects/s/versions/latest", schema_body(V2)) == (
        200, {"is_compatible": True})  # fmt: skip
    status, body = registry.call(
        "post", "/compatibility/subjects/s/versions/1?verbose=true", schema_body(NEEDS_AGE)
    )
    assert status == 200 and body["is_compatible"] is False and body["messages"]
    assert registry.call("post", "/compatibility/subjects/s/versions", schema_body(NEEDS_AGE))[1] == {
        "is_compatible": False}  # fmt: skip
    assert registry.call("post", "/compatibility/subjects/new/versions", schema_body(NEEDS_AGE))[1] == {
        "is_compatible": True}  # fmt: skip

    assert registry.call("get", "/config") == (200, {"compatibilityLevel": "BACKWARD"})
    assert registry.call("put", "/config", {"compatibility": "FULL"}) == (200, {"compatibility": "FULL"})
    assert registry.call("get", "/config") == (200, {"compatibilityLevel": "FULL"})
    assert registry.call("get", "/config/s") == (404, {"error_code": 40408, "message": registry.call(
        "get", "/config/s")[1]["message"]})  # fmt: skip
    assert registry.call("get", "/config/s?defaultToGlobal=true") == (200, {"compatibilityLevel": "FULL"})
    assert registry.call("put", "/config/s", {"compatibilityLevel": "NONE"}) == (
        200,
        {"compatibility": "NONE"},
    )
    assert registry.call("get", "/config/s") == (200, {"compatibilityLevel": "NONE"})
    assert registry.call("post", "/subjects/s/versions", schema_body(NEEDS_AGE))[0] == 200
    assert registry.call("delete", "/config/s") == (200, {"compatibilityLevel": "NONE"})
    assert registry.call("delete", "/config") == (200, {"compatibilityLevel": "FULL"})
    assert registry.call("get", "/config") == (200, {"compatibilityLevel": "BACKWARD"})


def test_incompatible_registration(registry):
    registry.call("post", "/subjects/s/versions", schema_body(V1))
    status, body = registry.call("post", "/subjects/s/versions", schema_body(NEEDS_AGE))
    assert status == 409 and body["error_code"] == 409 and "incompatible" in body["message"]


def test_deletes(registry):
    registry.call("post", "/subjects/s/versions", schema_body(V1))
    registry.call("post", "/subjects/s/versions", schema_body(V2))
    assert registry.call("delete", "/subjects/s/versions/latest") == (200, 2)
    assert registry.call("get", "/subjects/s/versions") == (200, [1])
    assert registry.call("get", "/subjects/s/versions?deleted=true") == (200, [1, 2])
    assert registry.call("get", "/subjects/s/versions?deleted_only=true") == (200, [2])
    assert registry.call("get", "/subjects/s/versions/2?deleted=true")[1]["version"] == 2
    assert registry.call("delete", "/subjects/s/versions/2")[1]["error_code"] == 40406
    assert registry.call("delete", "/subjects/s/versions/1?permanent=true")[1]["error_code"] == 40407
    assert registry.call("delete", "/subjects/s/versions/2?permanent=true") == (200, 2)
    assert registry.call("delete", "/subjects/s?permanent=true")[1]["error_code"] == 40405
    assert registry.call("delete", "/subjects/s") == (200, [1])
    assert registry.call("get", "/subjects") == (200, [])
    assert registry.call("get", "/subjects?deleted=true") == (200, ["s"])
    assert registry.call("get", "/subjects?deleted_only=true") == (200, ["s"])
    assert registry.call("delete", "/subjects/s")[1]["error_code"] == 40404
    assert registry.call("delete", "/subjects/s?permanent=true") == (200, [1])
    assert registry.call("get", "/subjects?deleted=true") == (200, [])


def test_auth(client, reader, make_token, registry):
    response = client.get(f"{PREFIX}/subjects")
    assert response.status_code == 401 and response.json()["error_code"] == 40101
    assert reader.call("get", "/subjects") == (200, [])
    status, body = reader.call("post", "/subjects/s/versions", schema_body(V1))
    assert (status, body["error_code"]) == (403, 40301)
    assert reader.call("put", "/config", {"compatibility": "NONE"})[1]["error_code"] == 40301
    registry.call("post", "/subjects/s/versions", schema_body(V1))
    assert reader.call("post", "/subjects/s", schema_body(V1))[0] == 200  # look-ups are reads
    assert reader.call("post", "/compatibility/subjects/s/versions/latest", schema_body(V1))[0] == 200
    # HTTP basic auth: the password is the token.
    basic = base64.b64encode(f"anyone:{make_token(['events:read'])}".encode()).decode()
    assert client.get(f"{PREFIX}/subjects", HTTP_AUTHORIZATION=f"Basic {basic}").json() == ["s"]
    wrong = base64.b64encode(b"anyone:flq_wrong").decode()
    response = client.get(f"{PREFIX}/subjects", HTTP_AUTHORIZATION=f"Basic {wrong}")
    assert response.status_code == 401 and response.json()["error_code"] == 40101
    response = client.get(f"{PREFIX}/subjects", HTTP_AUTHORIZATION="Basic !!!")
    assert response.status_code == 401 and response.json()["error_code"] == 40101


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("post", "/subjects/s/versions", {"schema": json.dumps(V1)}, 422, 42201),  # no schemaType = AVRO
        ("post", "/subjects/s/versions", schema_body(V1, schemaType="AVRO"), 422, 42201),
        ("post", "/subjects/s/versions", schema_body(V1, schemaType=7), 422, 42201),
        ("post", "/subjects/s/versions", {"schema": "{not json", "schemaType": "JSON"}, 422, 42201),
        ("post", "/subjects/s/versions", {"schema": V1, "schemaType": "JSON"}, 422, 42201),
        ("post", "/subjects/s/versions", {"schemaType": "JSON"}, 422, 42201),
        ("post", "/subjects/s/versions", {"schema": "[1, 2]", "schemaType": "JSON"}, 422, 42201),
        ("post", "/subjects/s/versions", {"schema": "NaN", "schemaType": "JSON"}, 422, 42201),
        ("post", "/subjects/s/versions", schema_body({"type": "nope"}), 422, 42201),
        ("post", "/subjects/s/versions", schema_body({"$schema": "http://json-schema.org/draft-03/schema#"}), 422,
         42201),
        ("post", "/subjects/s/versions", schema_body({"$ref": "https://example.com/x.json"}), 422, 42201),
        ("post", "/subjects/s/versions", schema_body(V1, references=[{"name": "x", "subject": "y", "version": 1}]),
         422, 42201),
        ("post", "/subjects/s/versions", schema_body(V1, metadata={"properties": {"a": "b"}}), 422, 42201),
        ("post", "/subjects/s/versions", schema_body(V1, surprise=1), 400, 400),
        ("post", "/subjects/s/versions", schema_body(V1, id=5), 422, 42205),
        ("post", "/subjects/s/versions", schema_body(V1, version=2), 422, 42205),
        ("post", "/subjects/s/versions", [1], 400, 400),
        ("post", "/subjects/s/versions", b"{broken", 400, 400),
        ("post", "/subjects/%20s/versions", schema_body(V1), 422, 42208),
        ("get", "/subjects/none/versions", None, 404, 40401),
        ("get", "/subjects/none/versions/1", None, 404, 40401),
        ("get", "/subjects/known/versions/5", None, 404, 40402),
        ("get", "/subjects/known/versions/0", None, 422, 42202),
        ("get", "/subjects/known/versions/abc", None, 422, 42202),
        ("get", "/subjects?offset=-1", None, 400, 400),
        ("get", "/subjects?deleted=sometimes", None, 400, 400),
        ("get", "/schemas/ids/999999", None, 404, 40403),
        ("get", "/schemas/ids/abc", None, 404, 40403),
        ("get", "/schemas/ids/%C2%B2", None, 404, 40403),
        ("get", "/subjects/known/versions/%C2%B2", None, 422, 42202),
        ("get", "/schemas/ids/0/subjects", None, 404, 40403),
        ("post", "/subjects/known", schema_body(V2), 404, 40403),
        ("post", "/subjects/none", schema_body(V1), 404, 40401),
        ("post", "/compatibility/subjects/none/versions/latest", schema_body(V1), 404, 40401),
        ("post", "/compatibility/subjects/known/versions/7", schema_body(V1), 404, 40402),
        ("post", "/compatibility/subjects/known/versions/x", schema_body(V1), 422, 42202),
        ("post", "/compatibility/subjects/known/versions/latest", {"schema": "{}"}, 422, 42201),
        ("put", "/config", {"compatibility": "SIDEWAYS"}, 422, 42203),
        ("put", "/config", {}, 422, 42203),
        ("put", "/config", {"compatibility": "FULL", "compatibilityGroup": "g"}, 400, 400),
        ("put", "/config/known", {"compatibility": 5}, 422, 42203),
        ("get", "/config/none", None, 404, 40408),
        ("get", "/config/%20none", None, 422, 42208),
        ("put", "/config/%20none", {"compatibility": "FULL"}, 422, 42208),
        ("get", "/subjects/%20x/versions/1", None, 422, 42208),
        ("delete", "/subjects/known?permanent=maybe", None, 400, 400),
        ("delete", "/config/known", None, 404, 40408),
        ("delete", "/subjects/none", None, 404, 40401),
        ("delete", "/subjects/known/versions/3", None, 404, 40402),
        ("delete", "/subjects/known/versions/-5", None, 422, 42202),
        ("get", "/no/such/endpoint", None, 404, 404),
        ("patch", "/subjects", {}, 405, 405),
    ],
)  # fmt: skip
def test_bad_input(registry, method, path, body, status, code):
    registry.call("post", "/subjects/known/versions", schema_body(V1))
    got_status, got = registry.call(method, path, body)
    assert (got_status, got["error_code"]) == (status, code), got
    assert got["message"]


def test_deep_and_huge_schema_strings_are_refused(registry, settings):
    deep = "[" * 5000 + "]" * 5000
    status, body = registry.call("post", "/subjects/s/versions", {"schema": deep, "schemaType": "JSON"})
    assert (status, body["error_code"]) == (422, 42201) and "deeper" in body["message"]
    settings.SCHEMA_MAX_BYTES = 1000
    huge = json.dumps({"properties": {f"p{i}": {"type": "string"} for i in range(100)}})
    status, body = registry.call("post", "/subjects/s/versions", {"schema": huge, "schemaType": "JSON"})
    assert (status, body["error_code"]) == (422, 42201) and "at most 1000" in body["message"]
    status, body = registry.call("post", "/subjects/s/versions", {"schema": huge * 5, "schemaType": "JSON"})
    assert (status, body["error_code"]) == (422, 42201)


def test_a_registered_version_the_checker_loops_on_is_42201(registry, reader):
    from schemas import documents
    from schemas.models import Schema, SchemaVersion, Subject

    loop = {"oneOf": [{"const": None}, {"$ref": "#"}]}
    text = documents.canonical(loop)
    schema = Schema.objects.create(canonical=text, fingerprint=documents.fingerprint(text), document=loop)
    SchemaVersion.objects.create(
        subject=Subject.objects.create(name="loop", last_version=1), version=1, schema=schema
    )
    candidate = schema_body({"type": "object"})
    for client, path in (
        (reader, "/compatibility/subjects/loop/versions/latest"),
        (reader, "/compatibility/subjects/loop/versions"),
        (registry, "/subjects/loop/versions"),
    ):
        status, body = client.call("post", path, candidate)
        assert (status, body["error_code"]) == (422, 42201), (path, body)
        assert "unguarded recursive $ref" in body["message"]


def test_recursive_and_dangling_schemas_are_refused_at_registration(registry):
    for document in (
        {"$defs": {"a": {"$ref": "#/$defs/a", "type": "string"}}, "$ref": "#/$defs/a"},
        {"$ref": "#/$defs/x/type", "$defs": {"x": {"type": "string"}}},
    ):
        status, body = registry.call("post", "/subjects/s/versions", schema_body(document))
        assert (status, body["error_code"]) == (422, 42201), body


def test_c1_control_characters_in_subject_names_are_refused(registry):
    status, body = registry.call("post", "/subjects/a%C2%85b/versions", schema_body({}))
    assert (status, body["error_code"]) == (422, 42208), body


def test_an_internal_error_has_the_registry_shape(reader, monkeypatch):
    from schemas import services

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "check_compatibility", broken)
    status, body = reader.call("post", "/compatibility/subjects/s/versions", schema_body({}))
    assert status == 500
    assert body == {"error_code": 50001, "message": "internal error; see the server log"}


def test_a_comparison_past_the_work_budget_is_42201(registry, reader):
    def pairs(swap: bool) -> dict:
        first, second = ("integer", "string") if swap else ("string", "integer")
        return {"allOf": [{"anyOf": [{"type": "object", "properties": {f"p{i}": {"type": first}}},
                                     {"type": "object", "properties": {f"q{i}": {"type": second}}}]}
                          for i in range(9)]}  # fmt: skip

    assert registry.call("put", "/config/s", {"compatibility": "FULL"})[0] == 200
    assert registry.call("post", "/subjects/s/versions", schema_body(pairs(False)))[0] == 200
    status, body = reader.call("post", "/compatibility/subjects/s/versions/latest", schema_body(pairs(True)))
    assert (status, body["error_code"]) == (422, 42201) and "too complex to compare" in body["message"]
