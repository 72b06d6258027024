"""Registration, versions, global ids, compatibility modes, soft and permanent deletes."""

from __future__ import annotations

import pytest

from schemas import documents, services
from schemas.errors import (
    IncompatibleSchema,
    InvalidCompatibility,
    InvalidSchema,
    InvalidSubject,
    InvalidVersion,
    SchemaNotFound,
    SubjectConfigNotFound,
    SubjectNotFound,
    SubjectNotSoftDeleted,
    SubjectSoftDeleted,
    VersionNotFound,
    VersionNotSoftDeleted,
    VersionSoftDeleted,
)
from schemas.models import Schema, SchemaVersion, Subject

pytestmark = pytest.mark.django_db

# Closed content models evolve by adding optional properties under BACKWARD: data written with
# V1 has no "age", so a V2 reader accepts it. (An open V1 could have carried "age" of any type.)
V1 = {"type": "object", "properties": {"name": {"type": "string"}}, "additionalProperties": False}
V2 = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
      "additionalProperties": False}  # fmt: skip
NEEDS_AGE = {**V2, "required": ["age"]}
OPEN = {"type": "object", "properties": {"name": {"type": "string"}}}


def test_versions_are_numbered_and_ids_shared_across_subjects():
    first = services.register("orders", V1)
    second = services.register("orders", V2)
    other = services.register("invoices", V1)
    assert (first.created, first.version.version) == (True, 1)
    assert second.version.version == 2
    assert other.version.version == 1
    assert other.version.schema_id == first.version.schema_id
    assert second.version.schema_id != first.version.schema_id


def test_registering_the_same_schema_again_returns_the_existing_version():
    first = services.register("orders", V1)
    again = services.register(
        "orders",
        {"additionalProperties": False, "properties": {"name": {"type": "string"}}, "type": "object"},
    )
    assert again.created is False
    assert again.version.pk == first.version.pk
    assert services.get_version("orders", "latest").version == 1


def test_backward_is_the_default_and_refuses_a_new_required_property():
    services.register("orders", V1)
    with pytest.raises(IncompatibleSchema) as caught:
        services.register("orders", NEEDS_AGE)
    error = caught.value
    assert error.http_status == 409
    assert error.extra["mode"] == "BACKWARD"
    assert error.extra["differences"], error.extra
    assert all(d["version"] == 1 for d in error.extra["differences"])
    assert {"pointer", "kind", "message", "direction"} <= set(error.extra["differences"][0])
    assert services.get_version("orders", "latest").version == 1  # nothing written


def test_subject_mode_overrides_the_global_one():
    services.register("orders", V1)
    services.set_subject_config("orders", compatibility="NONE")
    assert services.register("orders", NEEDS_AGE).version.version == 2
    services.set_subject_config("orders", compatibility=None)
    assert services.effective_compatibility(services.find_subject("orders")) == "BACKWARD"


def test_global_mode_applies_to_subjects_without_their_own():
    services.register("orders", V1)
    services.set_global_compatibility("forward")
    assert services.global_compatibility() == "FORWARD"
    # FORWARD: the V1 reader (closed) must accept V2's data, which may carry "age".
    with pytest.raises(IncompatibleSchema) as caught:
        services.register("orders", V2)
    assert caught.value.extra["differences"][0]["direction"] == "FORWARD"
    assert services.reset_global_compatibility() == "FORWARD"
    assert services.global_compatibility() == "BACKWARD"
    assert services.register("orders", V2).created


def test_transitive_checks_every_live_version_but_not_deleted_ones():
    services.set_subject_config("orders", compatibility="NONE")
    services.register("orders", {"type": "object", "properties": {"n": {"type": "string"}}})
    services.register("orders", {"type": "object", "properties": {"n": {"type": "integer"}}})
    candidate = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}}
    # FORWARD: the old readers must accept the candidate's data.
    assert services.check_compatibility("orders", candidate, mode="FORWARD").compatible
    verdict = services.check_compatibility("orders", candidate, mode="FORWARD_TRANSITIVE")
    assert not verdict.compatible
    assert {d["version"] for d in verdict.differences} == {1}
    assert verdict.versions == [1, 2]
    services.delete_version("orders", 1)
    assert services.check_compatibility("orders", candidate, mode="FORWARD_TRANSITIVE").compatible


def test_check_against_one_version():
    services.register("orders", OPEN)
    services.set_subject_config("orders", compatibility="NONE")
    services.register("orders", V1)
    verdict = services.check_compatibility("orders", V2, version=2, mode="BACKWARD")
    assert verdict.compatible  # V2 reads everything V1 wrote
    verdict = services.check_compatibility("orders", V2, version="1", mode="FORWARD")
    assert verdict.compatible and verdict.versions == [1]
    assert not services.check_compatibility("orders", V2, version="latest", mode="FORWARD").compatible


def test_soft_then_permanent_delete_of_a_version():
    services.register("orders", V1)
    services.register("orders", V2)
    assert services.delete_version("orders", "2") == 2
    assert services.get_version("orders", "latest").version == 1
    with pytest.raises(VersionNotFound):
        services.get_version("orders", 2)
    assert services.get_version("orders", 2, include_deleted=True).deleted
    with pytest.raises(VersionSoftDeleted):
        services.delete_version("orders", 2)
    with pytest.raises(VersionNotSoftDeleted):
        services.delete_version("orders", 1, permanent=True)
    schema_id = services.get_version("orders", 2, include_deleted=True).schema_id
    assert services.delete_version("orders", 2, permanent=True) == 2
    assert not Schema.objects.filter(pk=schema_id).exists()  # no version used it any more
    # Numbers are never handed out twice.
    assert services.register("orders", OPEN).version.version == 3


def test_soft_then_permanent_delete_of_a_subject():
    services.register("orders", V1)
    services.register("invoices", V1)
    assert services.delete_subject("orders") == [1]
    with pytest.raises(SubjectNotFound):
        services.get_subject("orders")
    assert [s.name for s in services.list_subjects()] == ["invoices"]
    assert [s.name for s in services.list_subjects(include_deleted=True)] == ["invoices", "orders"]
    with pytest.raises(SubjectSoftDeleted):
        services.delete_subject("orders")
    with pytest.raises(SubjectNotSoftDeleted):
        services.delete_subject("invoices", permanent=True)
    assert services.delete_subject("orders", permanent=True) == [1]
    assert services.find_subject("orders") is None
    # The schema is still used by "invoices": its id lives on.
    assert services.get_version("invoices", 1).schema.document == V1
    with pytest.raises(SubjectNotFound):
        services.delete_subject("orders", permanent=True)
    # A subject deleted permanently starts again at version 1.
    assert services.register("orders", V2).version.version == 1


def test_lookup():
    services.register("orders", V1)
    services.register("orders", V2)
    assert services.lookup("orders", V1).version == 1
    with pytest.raises(SchemaNotFound):
        services.lookup("orders", OPEN)
    with pytest.raises(SubjectNotFound):
        services.lookup("nothing", V1)
    services.delete_version("orders", 1)
    with pytest.raises(SchemaNotFound):
        services.lookup("orders", V1)
    assert services.lookup("orders", V1, include_deleted=True).version == 1


def test_subject_config():
    with pytest.raises(SubjectConfigNotFound):
        services.subject_compatibility("orders")
    services.set_subject_config("orders", compatibility="full_transitive", validate=False)
    subject = services.find_subject("orders")
    assert (subject.compatibility, subject.validate) == ("FULL_TRANSITIVE", False)
    assert services.delete_subject_config("orders") == "FULL_TRANSITIVE"
    with pytest.raises(SubjectConfigNotFound):
        services.delete_subject_config("orders")


@pytest.mark.parametrize(
    "name", ["", "a/b", "tab\there", " padded", "x" * 256, 7, None, "a\x7fb", "a\u0085b", "a\x80b", "a\x9fb"]
)
def test_bad_subject_names(name):
    with pytest.raises(InvalidSubject):
        services.register(name, V1)


@pytest.mark.parametrize(
    "version", ["0", "-2", "one", "1.5", "99999999999", "\u00b2", "\uff11", 0, True, None]
)
def test_bad_versions(version):
    services.register("orders", V1)
    with pytest.raises(InvalidVersion):
        services.get_version("orders", version)


@pytest.mark.parametrize("mode", ["SIDEWAYS", "", None, 3])
def test_bad_modes(mode):
    with pytest.raises(InvalidCompatibility):
        services.set_global_compatibility(mode)


def test_unknown_things():
    with pytest.raises(SubjectNotFound):
        services.get_version("nothing", 1)
    services.register("orders", V1)
    with pytest.raises(VersionNotFound):
        services.get_version("orders", 5)
    for value in (10**9, "abc", 0, -3):
        with pytest.raises(SchemaNotFound):
            services.get_schema(value)


def test_schema_the_checker_cannot_reason_about_is_422_only_when_a_check_is_needed():
    dynamic = {"$defs": {"a": {"$dynamicAnchor": "a"}}, "$dynamicRef": "#/$defs/a"}
    services.register("orders", V1)
    with pytest.raises(InvalidSchema) as caught:
        services.register("orders", dynamic)
    assert "compatibility cannot be checked" in caught.value.message
    services.set_subject_config("orders", compatibility="NONE")
    assert services.register("orders", dynamic).created


def test_unguarded_recursion_in_a_registered_version_is_422_not_a_crash():
    # Registered before such schemas were refused: a comparison with it must not crash.
    loop = {"oneOf": [{"const": None}, {"$ref": "#"}]}
    schema = Schema.objects.create(canonical=documents.canonical(loop),
                                   fingerprint=documents.fingerprint(documents.canonical(loop)), document=loop)  # fmt: skip
    subject = Subject.objects.create(name="orders", last_version=1)
    SchemaVersion.objects.create(subject=subject, version=1, schema=schema)
    for call in (
        lambda: services.register("orders", {"type": "object"}),
        lambda: services.check_compatibility("orders", {"type": "object"}, mode="FULL"),
    ):
        with pytest.raises(InvalidSchema) as caught:
            call()
        assert "unguarded recursive $ref" in caught.value.message
