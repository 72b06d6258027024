"""The two validators behind a compiled schema agree, and jsonschema alone takes what the fast one cannot."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.validation import compile_schema

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z]+-[0-9]+$"},
        "n": {"type": "integer", "minimum": 0, "multipleOf": 2},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2, "uniqueItems": True},
        "when": {"type": "string", "format": "date-time"},
        "kind": {"oneOf": [{"const": "x"}, {"type": "integer"}]},
        "ref": {"$ref": "#/$defs/positive"},
    },
    "$defs": {"positive": {"type": "number", "exclusiveMinimum": 0}},
    "required": ["id"],
    "additionalProperties": {"type": "boolean"},
}
DATA = [
    {"id": "a-1"},
    {"id": "a-1", "n": 4, "tags": ["a", "b"], "kind": "x", "ref": 0.5, "extra": True},
    {"id": "a-1", "when": "not a date"},  # format is an annotation in both
    {"id": "a-1", "n": 4.0},
    {"id": "A-1"},
    {"n": 2},
    {"id": "a-1", "n": 3},
    {"id": "a-1", "tags": ["a", "a"]},
    {"id": "a-1", "kind": "y"},
    {"id": "a-1", "ref": 0},
    {"id": "a-1", "extra": "no"},
    None,
    [],
]


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize(
    "draft", ["https://json-schema.org/draft/2020-12/schema", "http://json-schema.org/draft-07/schema#"]
)
def test_fast_and_full_validators_agree(data, draft):
    document = {**SCHEMA, "$schema": draft}
    if "draft-07" in draft:
        document["definitions"] = document.pop("$defs")
        document["properties"] = {**SCHEMA["properties"], "ref": {"$ref": "#/definitions/positive"}}
    compiled = compile_schema(document)
    assert compiled.fast is not None
    assert compiled.fast.is_valid(data) == compiled.full.is_valid(data)
    assert (compiled.errors(data) == []) == compiled.full.is_valid(data)


def test_a_pattern_only_python_accepts_is_validated_by_jsonschema_alone():
    # Registration refuses such a pattern now; a row stored before still validates.
    compiled = compile_schema({"type": "string", "pattern": "^(?P<c>[a-z])(?P=c)$"})
    assert compiled.fast is None
    assert compiled.errors("aa") == []
    assert [error.keyword for error in compiled.errors("ab")] == ["pattern"]


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12) | st.sampled_from(["a-1", "x", "A-1", "b"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["id", "n", "tags", "when", "kind", "ref", "extra"]), children, max_size=5),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(_json)
def test_engines_agree_on_arbitrary_data(data):
    compiled = _COMPILED
    assert compiled.fast.is_valid(data) == compiled.full.is_valid(data), data


_COMPILED = compile_schema(SCHEMA)
