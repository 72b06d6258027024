"""confluent-kafka's SchemaRegistryClient, unchanged, against a real server of ours."""

from __future__ import annotations

import json

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

pytestmark = pytest.mark.django_db(transaction=True)

V1 = {"type": "object", "properties": {"name": {"type": "string"}}, "additionalProperties": False}
V2 = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
      "additionalProperties": False}  # fmt: skip
NEEDS_AGE = {**V2, "required": ["age"]}


def client(url: str, token: str, *, basic: bool = False) -> SchemaRegistryClient:
    auth = (
        {"basic.auth.user.info": f"flunq:{token}"}
        if basic
        else {"bearer.auth.credentials.source": "STATIC_TOKEN", "bearer.auth.token": token,
              "bearer.auth.logical.cluster": "flunq"}
    )  # fmt: skip
    return SchemaRegistryClient({"url": f"{url}/schema-registry", "max.retries": 0, **auth})


def schema(document: dict) -> Schema:
    return Schema(json.dumps(document), schema_type="JSON")


def test_the_confluent_client_works_unchanged(live_server_factory, make_token):
    server = live_server_factory()
    admin = client(server.url, make_token(["admin"]))
    reader = client(server.url, make_token(["events:read"]), basic=True)

    schema_id = admin.register_schema("orders-value", schema(V1))
    assert admin.register_schema("other-value", schema(V1)) == schema_id  # one id per distinct schema
    assert reader.get_subjects() == ["orders-value", "other-value"]

    found = reader.lookup_schema("orders-value", schema(V1))
    assert (found.schema_id, found.version, found.subject) == (schema_id, 1, "orders-value")
    fetched = reader.get_schema(schema_id)
    assert fetched.schema_type == "JSON" and json.loads(fetched.schema_str) == V1
    latest = reader.get_latest_version("orders-value")
    assert (latest.version, latest.schema_id) == (1, schema_id)

    assert reader.test_compatibility("orders-value", schema(V2)) is True
    assert reader.test_compatibility("orders-value", schema(NEEDS_AGE), version=1) is False
    with pytest.raises(SchemaRegistryError) as caught:
        admin.register_schema("orders-value", schema(NEEDS_AGE))
    assert (caught.value.http_status_code, caught.value.error_code) == (409, 409)
    second = admin.register_schema("orders-value", schema(V2))
    assert admin.get_versions("orders-value") == [1, 2]
    assert admin.get_version("orders-value", 2).schema_id == second

    assert admin.set_compatibility(level="FULL") == {"compatibility": "FULL"}
    assert reader.get_compatibility() == "FULL"
    admin.set_compatibility("orders-value", "NONE")
    assert reader.get_compatibility("orders-value") == "NONE"
    admin.register_schema("orders-value", schema(NEEDS_AGE))

    with pytest.raises(SchemaRegistryError) as caught:
        reader.register_schema("orders-value", schema({"type": "string"}))
    assert caught.value.http_status_code == 403

    assert admin.delete_version("orders-value", 3) == 3
    assert admin.delete_version("orders-value", 3, permanent=True) == 3
    assert admin.delete_subject("orders-value") == [1, 2]
    assert admin.delete_subject("orders-value", permanent=True) == [1, 2]
    assert reader.get_subjects() == ["other-value"]
    with pytest.raises(SchemaRegistryError) as caught:
        reader.get_version("orders-value", "latest")  # get_latest_version would answer from its cache
    assert caught.value.error_code == 40401
    with pytest.raises(SchemaRegistryError) as caught:
        reader.get_schema(10**9)
    assert caught.value.error_code == 40403
