"""Which documents the registry accepts as schemas, and what it says about the others."""

from __future__ import annotations

import pytest

from schemas.documents import canonical, check_document
from schemas.errors import InvalidSchema

OK = [
    {},
    {"type": "object", "properties": {"a": {"type": "string"}}},
    {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "integer"},
    {"$schema": "http://json-schema.org/draft-07/schema#", "type": "integer"},
    {
        "$schema": "http://json-schema.org/draft-07/schema",
        "definitions": {"a": {"type": "string"}},
        "$ref": "#/definitions/a",
    },
    {"$defs": {"a": {"type": "string"}}, "properties": {"x": {"$ref": "#/$defs/a"}}},
    {"properties": {"$ref": {"type": "string"}}},  # a property named $ref is not a reference
    {"enum": [{"$ref": "https://example.com/not-a-reference"}]},  # data, not a reference
    {"$id": "https://example.com/s.json", "$defs": {"a": {}}, "$ref": "#/$defs/a"},
    {"patternProperties": {"^x-": {"type": "string"}}},
    {"pattern": "^(?=.*[0-9])(?!x)(\\w)\\1"},  # lookaround and backreferences (bounded backtracking)
    # Recursion that descends into a property or an item ends with the data.
    {"type": "object", "properties": {"child": {"$ref": "#"}}},
    {"$defs": {"tree": {"type": "array", "items": {"$ref": "#/$defs/tree"}}}, "$ref": "#/$defs/tree"},
    {"$defs": {"a": {"$ref": "#"}}},  # never applied: $defs are only reached through a $ref
    # draft 7 ignores keywords next to $ref, so this allOf is never applied
    {"$schema": "http://json-schema.org/draft-07/schema#", "definitions": {"a": {"type": "string"}},
     "$ref": "#/definitions/a", "allOf": [{"$ref": "#"}]},
    # a nested $id moves the base URI; a ref through it resolves inside that resource
    {"properties": {"a": {"$id": "http://example.com/sub", "$defs": {"x": {"type": "string"}},
                          "$ref": "#/$defs/x"}}},
]  # fmt: skip


@pytest.mark.parametrize("document", OK)
def test_accepted(document):
    assert check_document(document) is document


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ("a string", "must be a JSON object, got str"),
        (["array"], "must be a JSON object, got list"),
        (True, "got a boolean"),
        (None, "got NoneType"),
        ({"$schema": "http://json-schema.org/draft-04/schema#"}, "unknown $schema"),
        ({"$schema": "https://example.com/my-draft"}, "unknown $schema"),
        ({"$schema": 7}, "$schema must be a string"),
        ({"type": "strin"}, "not a valid"),
        ({"type": "object", "properties": {"a": {"minLength": -1}}}, "/properties/a/minLength"),
        ({"required": "a"}, "not a valid"),
        ({"$ref": "https://example.com/schema.json"}, "not a local reference"),
        ({"properties": {"a": {"$ref": "http://127.0.0.1:1/x.json#/a"}}}, "not a local reference"),
        ({"$ref": "other.json#/a"}, "not a local reference"),
        ({"$ref": "#/$defs/missing"}, "does not resolve"),
        ({"pattern": "(unclosed"}, "not a valid regular expression"),
        ({"patternProperties": {"[": {}}}, "not a valid regular expression"),
        # Python-only syntax: validation would need Python's re, which backtracks without limit
        ({"pattern": "^(?P<c>[a-z])(?P=c)$"}, "not a valid regular expression"),
        ({"patternProperties": {"(?P<c>x)(?P=c)": {}}}, "not a valid regular expression"),
        # $ref loops that never consume data: validating them would never end
        ({"$defs": {"a": {"$ref": "#/$defs/a", "type": "string"}}, "$ref": "#/$defs/a"},
         "unguarded recursive $ref"),
        ({"$ref": "#", "type": "string"}, "unguarded recursive $ref"),
        ({"oneOf": [{"const": None}, {"$ref": "#"}]}, "unguarded recursive $ref"),
        ({"$defs": {"a": {"not": {"$ref": "#/$defs/b"}}, "b": {"if": {"$ref": "#/$defs/a"}}},
          "properties": {"p": {"$ref": "#/$defs/a"}}}, "unguarded recursive $ref"),
        ({"$schema": "http://json-schema.org/draft-07/schema#", "$ref": "#"}, "unguarded recursive $ref"),
        # a $ref must point at a schema, not at any JSON value
        ({"$ref": "#/$defs/x/type", "$defs": {"x": {"type": "string"}}}, "does not point at a schema"),
        ({"$ref": "#/allOf", "allOf": [{}]}, "does not point at a schema"),
        # resolved against the nested $id, as the validator resolves it
        ({"$defs": {"x": {"type": "string"}},
          "properties": {"a": {"$id": "http://example.com/sub", "$ref": "#/$defs/x"}}}, "does not resolve"),
        ({"$ref": "#/$defs/x/type/foo", "$defs": {"x": {"type": "string"}}}, "does not resolve"),
    ],
)  # fmt: skip
def test_refused_with_the_reason(document, words):
    with pytest.raises(InvalidSchema) as caught:
        check_document(document)
    assert words in caught.value.message
    assert caught.value.http_status == 422


def test_deep_schema_refused(settings):
    settings.SCHEMA_MAX_DEPTH = 10
    node: dict = {"type": "object"}
    for _ in range(12):
        node = {"type": "object", "properties": {"a": node}}
    with pytest.raises(InvalidSchema) as caught:
        check_document(node)
    assert "deeper than 10" in caught.value.message


def test_huge_schema_refused(settings):
    settings.SCHEMA_MAX_BYTES = 1000
    document = {"properties": {f"p{i}": {"type": "string"} for i in range(100)}}
    with pytest.raises(InvalidSchema) as caught:
        check_document(document)
    assert "at most 1000" in caught.value.message


def test_canonical_form_ignores_key_order_and_spacing():
    assert canonical({"b": 1, "a": {"y": 2, "x": 1}}) == canonical({"a": {"x": 1, "y": 2}, "b": 1})
    assert canonical({"a": 1}) == '{"a":1}'


def test_size_is_counted_in_utf8_bytes(settings):
    settings.SCHEMA_MAX_BYTES = 1000
    # 300 characters, but 1,200 bytes of UTF-8
    with pytest.raises(InvalidSchema) as caught:
        check_document({"description": "\U0001f600" * 300})
    assert "at most 1000" in caught.value.message
    check_document({"description": "\U0001f600" * 200})


def test_a_reference_resolves_as_the_validator_resolves_it():
    from schemas.validation import compile_schema

    nested = {"properties": {"a": {"$id": "http://example.com/sub", "$defs": {"x": {"type": "string"}},
                                   "$ref": "#/$defs/x"}}}  # fmt: skip
    check_document(nested)
    compiled = compile_schema(nested)
    assert compiled.errors({"a": "text"}) == []
    assert [error.keyword for error in compiled.errors({"a": 1})] == ["type"]
