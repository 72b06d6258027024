"""Appends of a registered type are validated; a failure is a 422 naming each error, nothing written."""

from __future__ import annotations

import itertools
import time

import pytest

from events import services as events
from events.cloudevents import from_structured
from events.models import Event
from flunq_events.errors import ValidationFailed
from schemas import documents, services, validation
from schemas.models import Schema, SchemaVersion, Subject

pytestmark = pytest.mark.django_db(transaction=True)

_ids = itertools.count(1)
ORDER = {
    "type": "object",
    "properties": {
        "amount": {"type": "number", "minimum": 0},
        "items": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["amount"],
}
ORDER_V2 = {**ORDER, "properties": {**ORDER["properties"], "amount": {"type": "number", "minimum": 10}}}


def event(type_: str = "order.placed", **attributes):
    return from_structured(
        {
            "specversion": "1.0",
            "id": f"v-{next(_ids)}",
            "source": "/tests/schemas",
            "type": type_,
            **attributes,
        }
    )


def stored(type_: str = "order.placed") -> int:
    return Event.objects.filter(type=type_).count()


def refused(*batch) -> list[dict]:
    with pytest.raises(ValidationFailed) as caught:
        events.append(list(batch))
    assert caught.value.http_status == 422
    return caught.value.extra["errors"]


def test_unregistered_types_and_switched_off_subjects_are_accepted():
    events.append([event(data={"anything": True})])
    services.register("order.placed", ORDER)
    services.set_subject_config("order.placed", validate=False)
    events.append([event(data={"amount": "lots"})])
    assert stored() == 2


def test_valid_data_is_accepted_and_invalid_refused_with_pointers():
    services.register("order.placed", ORDER)
    events.append([event(data={"amount": 3, "items": ["a"]})])
    errors = refused(event(data={"amount": -1, "items": ["a", 2]}))
    assert {(e["pointer"], e["keyword"]) for e in errors} == {
        ("/0/data/amount", "minimum"),
        ("/0/data/items/1", "type"),
    }
    assert all(e["subject"] == "order.placed" and e["version"] == 1 for e in errors)
    assert any(e["schema_pointer"] == "/properties/amount/minimum" for e in errors)
    assert stored() == 1


def test_a_batch_is_refused_whole_and_errors_carry_the_index():
    services.register("order.placed", ORDER)
    errors = refused(event(data={"amount": 1}), event("other.type", data={}), event(data={"items": []}))
    assert errors == [
        {"index": 2, "pointer": "/2/data", "keyword": "required", "message": '"amount" is a required property',
         "schema_pointer": "/required", "subject": "order.placed", "version": 1}
    ]  # fmt: skip
    assert Event.objects.count() == 0


def test_a_batch_with_more_errors_than_are_listed_says_so():
    services.register("order.placed", ORDER)
    with pytest.raises(ValidationFailed) as refusal:
        events.append([event(data={"items": []}) for _ in range(150)])
    assert refusal.value.message.startswith("at least 100 event(s) failed schema validation")
    assert "50 events were not checked" in refusal.value.message
    assert len(refusal.value.extra["errors"]) == validation.MAX_REPORTED_ERRORS


def test_keys_needing_escapes_in_pointers():
    services.register("order.placed", {"properties": {"a/b": {"properties": {"c~d": {"type": "string"}}}}})
    errors = refused(event(data={"a/b": {"c~d": 1}}))
    assert errors[0]["pointer"] == "/0/data/a~1b/c~0d"


def test_schemas_required(settings):
    settings.SCHEMA_REQUIRED = True
    errors = refused(event("unknown.type", data={}))
    assert errors[0]["pointer"] == "/0/type" and "SCHEMA_REQUIRED" in errors[0]["message"]
    services.register("order.placed", ORDER)
    services.set_subject_config("order.placed", validate=False)
    events.append([event(data={})])  # registered, validation off: accepted
    assert Event.objects.count() == 1


def test_latest_live_version_is_used():
    services.set_subject_config("order.placed", compatibility="NONE")
    services.register("order.placed", ORDER)
    services.register("order.placed", ORDER_V2)
    refused(event(data={"amount": 5}))
    services.delete_version("order.placed", 2)
    events.append([event(data={"amount": 5})])
    services.delete_subject("order.placed")
    events.append([event(data={"amount": "anything goes"})])
    assert stored() == 2


DATASCHEMA_V1 = [
    "/api/v1/schemas/order.placed/versions/1",
    "https://events.example.com/api/v1/schemas/order.placed/versions/1",
    "http://127.0.0.1:8081/schema-registry/subjects/order.placed/versions/1",
]
BAD_DATASCHEMA = [
    ("/api/v1/schemas/order.placed/versions/7", "not a registered live version"),
    ("/api/v1/schemas/order.placed/versions/zero", "not a registered live version"),
    ("/api/v1/schemas/order.placed/versions/0", "not a registered live version"),
    ("/api/v1/schemas/order.placed/versions/%C2%B2", "not a registered live version"),  # ² is no number
    ("/api/v1/schemas/other.subject/versions/1", "must name a version of its own type"),
]


def test_dataschema_picks_a_version_and_must_name_a_live_one_of_the_type():
    # One test for every form: tests with transaction=True pay for emptying the tables.
    services.set_subject_config("order.placed", compatibility="NONE")
    services.register("order.placed", ORDER)
    services.register("order.placed", ORDER_V2)
    services.register("other.subject", {})
    for dataschema in DATASCHEMA_V1:
        events.append([event(data={"amount": 5}, dataschema=dataschema)])
        errors = refused(event(data={"amount": -5}, dataschema=dataschema))
        assert errors[0]["version"] == 1, dataschema
    for dataschema, words in BAD_DATASCHEMA:
        errors = refused(event(data={"amount": 50}, dataschema=dataschema))
        assert errors[0]["pointer"] == "/0/dataschema" and words in errors[0]["message"], dataschema
    # "latest" and URIs that are not ours mean the latest version.
    refused(event(data={"amount": 5}, dataschema="/api/v1/schemas/order.placed/versions/latest"))
    refused(event(data={"amount": 5}, dataschema="https://schemas.example.com/order.json"))
    events.append([event(data={"amount": 50}, dataschema="https://schemas.example.com/order.json")])
    assert stored() == 4
    # A soft-deleted version is no longer for new events.
    services.delete_version("order.placed", 1)
    refused(event(data={"amount": 50}, dataschema=DATASCHEMA_V1[0]))


def test_missing_and_binary_data():
    services.register("order.placed", ORDER)
    errors = refused(event())
    assert errors[0]["pointer"] == "/0/data" and "no data" in errors[0]["message"]
    errors = refused(event(data_base64="AAEC"))
    assert errors[0]["pointer"] == "/0/data_base64"
    services.register("maybe.empty", {"type": ["object", "null"]})
    events.append([event("maybe.empty")])


def test_draft7_schemas_validate_with_draft7_rules():
    services.register(
        "order.placed",
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "definitions": {"n": {"type": "integer"}},
            "properties": {"amount": {"$ref": "#/definitions/n", "maximum": 0}},
        },
    )
    # Draft 7 ignores keywords next to $ref: maximum does not apply.
    events.append([event(data={"amount": 5})])
    errors = refused(event(data={"amount": 1.5}))
    assert errors[0]["keyword"] == "type"


def test_remote_references_are_never_fetched():
    # Such a schema cannot be registered (it is refused with 422); a row written around the
    # registry still must not make the validator reach the network.
    remote = {"properties": {"amount": {"$ref": "http://127.0.0.1:9/remote.json"}}}
    schema = Schema.objects.create(canonical='{"properties":{"amount":{"$ref":"http://127.0.0.1:9/remote.json"}}}',
                                   fingerprint="x" * 64, document=remote)  # fmt: skip
    SchemaVersion.objects.create(subject=Subject.objects.create(name="order.placed", last_version=1), version=1,
                                 schema=schema)  # fmt: skip
    errors = refused(event(data={"amount": 1}))
    assert errors[0]["keyword"] == "$ref" and "does not resolve" in errors[0]["message"]


def test_changes_from_another_process_are_seen_after_the_cache_time(settings):
    services.register("order.placed", ORDER)
    refused(event(data={}))
    # Another process soft-deletes the version: this process does not hear about it...
    settings.SCHEMA_CACHE_SECONDS = 3600
    SchemaVersion.objects.update(deleted_at="2026-01-01T00:00:00Z")
    refused(event(data={}))
    # ...until its copy is older than SCHEMA_CACHE_SECONDS.
    settings.SCHEMA_CACHE_SECONDS = 0
    events.append([event(data={})])


def test_changes_in_this_process_are_seen_at_once(settings):
    settings.SCHEMA_CACHE_SECONDS = 3600
    events.append([event(data={})])
    services.register("order.placed", ORDER)
    refused(event(data={}))
    services.set_subject_config("order.placed", validate=False)
    events.append([event(data={})])
    assert validation.latest_targets()["order.placed"].validate is False


def test_rest_append_answers_422_with_the_errors(api):
    services.register("order.placed", ORDER)
    body = {
        "specversion": "1.0",
        "id": "r-1",
        "source": "/tests",
        "type": "order.placed",
        "data": {"amount": "x"},
    }
    response = api.post("/api/v1/events", body, format="json")
    assert response.status_code == 422
    payload = response.json()
    assert payload["error"] == "schema_validation_failed"
    assert payload["errors"][0]["pointer"] == "/0/data/amount"
    assert "/0/data/amount" in payload["message"]
    assert stored() == 0


def _written_around_the_registry(document: dict) -> None:
    text = documents.canonical(document)
    schema = Schema.objects.create(canonical=text, fingerprint=documents.fingerprint(text), document=document)
    SchemaVersion.objects.create(subject=Subject.objects.create(name="order.placed", last_version=1), version=1,
                                 schema=schema)  # fmt: skip


LOOPS = [
    {"$defs": {"a": {"$ref": "#/$defs/a", "type": "string"}}, "$ref": "#/$defs/a"},
    {"$ref": "#", "type": "string"},
]


@pytest.mark.parametrize("document", [*LOOPS, {"$ref": "#/$defs/x/type", "$defs": {"x": {"type": "string"}}}])
def test_a_schema_stored_before_it_was_refused_does_not_crash_appends(document):
    # Such schemas are refused at registration now; a row stored before must not crash appends.
    _written_around_the_registry(document)
    assert refused(event(data=5))
    assert stored() == 0


@pytest.mark.parametrize("document", LOOPS)
def test_unguarded_recursion_in_the_python_validator_is_a_422(document, monkeypatch):
    # Without jsonschema-rs (a schema it cannot compile), jsonschema alone would recurse forever.
    def cannot_compile(*args, **kwargs):
        raise ValueError("cannot compile")

    monkeypatch.setattr(validation.jsonschema_rs, "validator_for", cannot_compile)
    _written_around_the_registry(document)
    errors = refused(event(data=5))
    assert errors[0]["keyword"] == "$ref" and "unguarded recursive $ref" in errors[0]["message"], errors
    assert stored() == 0


def test_a_schema_the_python_validator_cannot_evaluate_is_a_422(monkeypatch):
    def cannot_compile(*args, **kwargs):
        raise ValueError("cannot compile")

    monkeypatch.setattr(validation.jsonschema_rs, "validator_for", cannot_compile)
    _written_around_the_registry({"$ref": "#/$defs/x/type", "$defs": {"x": {"type": "string"}}})
    errors = refused(event(data=5))
    assert errors[0]["keyword"] == "$ref" and "cannot be evaluated" in errors[0]["message"], errors


def test_patterns_never_backtrack_without_limit():
    # Python's re needs about 2**n steps for ^(a+)+$ against "a" * n + "!" (0.7 s at 24, 5 s at 27).
    services.register("order.placed", {"type": "object", "properties": {
        "code": {"type": "string", "pattern": "^(a+)+$"},
        "tags": {"type": "object", "patternProperties": {"^(a+)+$": {"type": "integer"}},
                 "additionalProperties": False},
    }})  # fmt: skip
    started = time.perf_counter()
    errors = refused(event(data={"code": "a" * 27 + "!", "tags": {"a" * 27 + "!": 1}}))
    assert time.perf_counter() - started < 1
    assert {(e["pointer"], e["keyword"]) for e in errors} == {
        ("/0/data/code", "pattern"),
        ("/0/data/tags", "additionalProperties"),
    }
