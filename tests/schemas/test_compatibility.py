"""Tests for the JSON Schema compatibility checker (schemas/compatibility.py).

Each table row is (old schema, new schema, mode, expected verdict, key difference kind,
pointer of that difference). BACKWARD means the new schema reads old data; FORWARD means
the old schema reads new data; FULL is both.
"""

from __future__ import annotations

import copy
import time
from unittest import mock

import jsonschema
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from schemas import compatibility
from schemas.compatibility import Difference, Result, SchemaError, check, is_compatible

S = {"type": "string"}
I = {"type": "integer"}  # noqa: E741
N = {"type": "number"}


def obj(props: dict, **kw) -> dict:
    return {"type": "object", "properties": props, **kw}


def case(name, old, new, mode, ok, kind=None, pointer=None):
    return pytest.param(old, new, mode, ok, kind, pointer, id=name)


CLOSED_AB = obj({"a": S, "b": I}, additionalProperties=False)
CLOSED_A = obj({"a": S}, additionalProperties=False)
MONEY_V1 = {
    "$defs": {"Money": obj({"amount": I, "currency": S}, required=["amount"])},
    "type": "object",
    "properties": {"price": {"$ref": "#/$defs/Money"}},
}
MONEY_V2 = copy.deepcopy(MONEY_V1)
MONEY_V2["$defs"]["Money"]["properties"]["amount"] = N
TREE_V1 = {
    "$defs": {"node": obj({"value": I, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}})},
    "$ref": "#/$defs/node",
}
TREE_V2 = copy.deepcopy(TREE_V1)
TREE_V2["$defs"]["node"]["properties"]["value"] = N
TREE_DRAFT7 = {
    "definitions": {
        "n": obj({"value": I, "children": {"type": "array", "items": {"$ref": "#/definitions/n"}}})
    },
    "$ref": "#/definitions/n",
}
CLOSED_2020 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {"base": {"properties": {"id": S}}},
    "allOf": [{"$ref": "#/$defs/base"}],
    "properties": {"x": S},
    "unevaluatedProperties": False,
}
EVENT_A = obj({"kind": {"const": "a"}, "x": S}, required=["kind"])
EVENT_B = obj({"kind": {"const": "b"}, "y": I}, required=["kind"])
EVENT_A2 = obj({"kind": {"const": "a"}, "x": {"type": ["string", "null"]}}, required=["kind"])

CASES = [
    # --- type -----------------------------------------------------------------------------
    case("type/integer->number/backward", I, N, "BACKWARD", True),
    case("type/integer->number/forward", I, N, "FORWARD", False, "TYPE_NARROWED", "#/type"),
    case("type/number->integer/backward", N, I, "BACKWARD", False, "TYPE_NARROWED", "#/type"),
    case("type/number->integer/forward", N, I, "FORWARD", True),
    case("type/string->integer", S, I, "BACKWARD", False, "TYPE_CHANGED", "#/type"),
    case("type/array-widened/backward", S, {"type": ["string", "null"]}, "BACKWARD", True),
    case("type/array-widened/forward", S, {"type": ["string", "null"]}, "FORWARD", False, "TYPE_NARROWED"),
    case(
        "type/array-reordered/full", {"type": ["string", "null"]}, {"type": ["null", "string"]}, "FULL", True
    ),
    case("type/removed/backward", S, {}, "BACKWARD", True),
    case("type/added/backward", {}, S, "BACKWARD", False, "TYPE_NARROWED", "#/type"),
    case("type/integer->number/full", I, N, "FULL", False, "TYPE_NARROWED"),
    # --- boolean schemas ------------------------------------------------------------------
    case("bool/true->false/backward", True, False, "BACKWARD", False, "TYPE_CHANGED", "#"),
    case("bool/false->object/backward", False, obj({"a": S}), "BACKWARD", True),
    case("bool/object->true/backward", obj({"a": S}), True, "BACKWARD", True),
    case("bool/true->object/backward", True, {"type": "object"}, "BACKWARD", False, "TYPE_NARROWED"),
    # --- properties and content models ------------------------------------------------------
    case(
        "object/optional-added-to-open/backward",
        obj({"a": S}),
        obj({"a": S, "b": I}),
        "BACKWARD",
        False,
        "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
        "#/properties/b",
    ),
    case("object/optional-added-to-open/forward", obj({"a": S}), obj({"a": S, "b": I}), "FORWARD", True),
    case(
        "object/empty-schema-added-to-open/backward", obj({"a": S}), obj({"a": S, "b": {}}), "BACKWARD", True
    ),
    case("object/removed-from-open/backward", obj({"a": S, "b": I}), obj({"a": S}), "BACKWARD", True),
    case(
        "object/removed-from-open/forward",
        obj({"a": S, "b": I}),
        obj({"a": S}),
        "FORWARD",
        False,
        "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
        "#/properties/b",
    ),
    case(
        "object/removed-from-closed/backward",
        CLOSED_AB,
        CLOSED_A,
        "BACKWARD",
        False,
        "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
        "#/properties/b",
    ),
    case("object/added-to-closed/backward", CLOSED_A, CLOSED_AB, "BACKWARD", True),
    case(
        "object/added-to-closed/forward",
        CLOSED_A,
        CLOSED_AB,
        "FORWARD",
        False,
        "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
        "#/properties/b",
    ),
    case(
        "object/added-to-closed/full",
        CLOSED_A,
        CLOSED_AB,
        "FULL",
        False,
        "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
    ),
    case(
        "object/false-property-removed-from-closed/backward",
        obj({"a": S, "b": False}, additionalProperties=False),
        CLOSED_A,
        "BACKWARD",
        True,
    ),
    case(
        "object/closed/backward",
        obj({"a": S}),
        CLOSED_A,
        "BACKWARD",
        False,
        "ADDITIONAL_PROPERTIES_REMOVED",
        "#/additionalProperties",
    ),
    case("object/opened/backward", CLOSED_A, obj({"a": S}), "BACKWARD", True),
    case(
        "object/additional-schema-narrowed/backward",
        obj({"a": S}),
        obj({"a": S}, additionalProperties=S),
        "BACKWARD",
        False,
        "ADDITIONAL_PROPERTIES_NARROWED",
        "#/additionalProperties",
    ),
    case(
        "object/additional-schema-widened/backward",
        obj({"a": S}, additionalProperties=I),
        obj({"a": S}, additionalProperties=N),
        "BACKWARD",
        True,
    ),
    case(
        "object/additional-schema-changed/backward",
        obj({"a": S}, additionalProperties=S),
        obj({"a": S}, additionalProperties=I),
        "BACKWARD",
        False,
        "TYPE_CHANGED",
        "#/additionalProperties/type",
    ),
    case(
        "object/added-covered-by-additional-schema/backward",
        obj({"a": S}, additionalProperties=S),
        obj({"a": S, "b": {"type": ["string", "null"]}}, additionalProperties=S),
        "BACKWARD",
        True,
    ),
    case(
        "object/added-not-covered-by-additional-schema/backward",
        obj({"a": S}, additionalProperties=S),
        obj({"a": S, "b": I}, additionalProperties=S),
        "BACKWARD",
        False,
        "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        "#/properties/b",
    ),
    case(
        "object/removed-covered-by-pattern/backward",
        obj({"x_a": S}, additionalProperties=False),
        obj({}, patternProperties={"^x_": S}, additionalProperties=False),
        "BACKWARD",
        True,
    ),
    case(
        "object/removed-not-covered-by-pattern/backward",
        obj({"x_a": S}, additionalProperties=False),
        obj({}, patternProperties={"^x_": I}, additionalProperties=False),
        "BACKWARD",
        False,
        "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        "#/properties/x_a",
    ),
    case(
        "object/pattern-added-to-open/backward",
        obj({"a": S}),
        obj({"a": S}, patternProperties={"^n_": I}),
        "BACKWARD",
        False,
        "ADDITIONAL_PROPERTIES_NARROWED",
        "#/patternProperties/^n_",
    ),
    case(
        "object/disjoint-pattern-added-to-closed/backward",
        obj({}, patternProperties={"^s_": S}, additionalProperties=False),
        obj({}, patternProperties={"^s_": S, "^n_": I}, additionalProperties=False),
        "BACKWARD",
        True,
    ),
    case(
        "object/unevaluated-closed/backward",
        obj({"a": S}),
        obj({"a": S}, unevaluatedProperties=False),
        "BACKWARD",
        False,
        "ADDITIONAL_PROPERTIES_REMOVED",
        "#/unevaluatedProperties",
    ),
    case(
        "object/2020-closed-with-allOf-ref/optional-added/backward",
        CLOSED_2020,
        {**CLOSED_2020, "properties": {"x": S, "y": S}},
        "BACKWARD",
        True,
    ),
    case(
        "object/2020-closed-with-allOf-ref/optional-added/forward",
        CLOSED_2020,
        {**CLOSED_2020, "properties": {"x": S, "y": S}},
        "FORWARD",
        False,
        "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
        "#/properties/y",
    ),
    case(
        "object/2020-closed-with-allOf-ref/inherited-narrowed/backward",
        CLOSED_2020,
        {**CLOSED_2020, "$defs": {"base": {"properties": {"id": {**S, "maxLength": 8}}}}},
        "BACKWARD",
        False,
        "MAX_LENGTH_ADDED",
        "#/$defs/base/properties/id/maxLength",
    ),
    # --- required ---------------------------------------------------------------------------
    case(
        "required/added/backward",
        obj({"a": S}),
        obj({"a": S}, required=["a"]),
        "BACKWARD",
        False,
        "REQUIRED_ATTRIBUTE_ADDED",
        "#/required/a",
    ),
    case("required/added/forward", obj({"a": S}), obj({"a": S}, required=["a"]), "FORWARD", True),
    case("required/removed/backward", obj({"a": S}, required=["a"]), obj({"a": S}), "BACKWARD", True),
    case(
        "required/property-added-to-open/backward",
        obj({"a": S}),
        obj({"a": S, "c": {}}, required=["c"]),
        "BACKWARD",
        False,
        "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
        "#/properties/c",
    ),
    case(
        "required/property-added-to-closed/backward",
        CLOSED_A,
        obj({"a": S, "c": S}, required=["c"], additionalProperties=False),
        "BACKWARD",
        False,
        "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
        "#/properties/c",
    ),
    # --- object sizes, propertyNames, dependencies -------------------------------------------
    case(
        "minProperties/increased/backward",
        {"type": "object", "minProperties": 1},
        {"type": "object", "minProperties": 2},
        "BACKWARD",
        False,
        "MIN_PROPERTIES_INCREASED",
        "#/minProperties",
    ),
    case(
        "maxProperties/added/backward",
        {"type": "object"},
        {"type": "object", "maxProperties": 3},
        "BACKWARD",
        False,
        "MAX_PROPERTIES_ADDED",
        "#/maxProperties",
    ),
    case(
        "maxProperties/increased/backward",
        {"type": "object", "maxProperties": 3},
        {"type": "object", "maxProperties": 4},
        "BACKWARD",
        True,
    ),
    case(
        "minProperties/implied-by-required/backward",
        obj({"a": S, "b": S}, required=["a", "b"]),
        obj({"a": S, "b": S}, required=["a", "b"], minProperties=2),
        "BACKWARD",
        True,
    ),
    case(
        "propertyNames/added/backward",
        {"type": "object"},
        {"type": "object", "propertyNames": {"maxLength": 8}},
        "BACKWARD",
        False,
        "MAX_LENGTH_ADDED",
        "#/propertyNames/maxLength",
    ),
    case(
        "dependentRequired/added/backward",
        obj({"a": S, "b": S}),
        obj({"a": S, "b": S}, dependentRequired={"a": ["b"]}),
        "BACKWARD",
        False,
        "DEPENDENCY_ARRAY_ADDED",
        "#/dependentRequired/a",
    ),
    case(
        "dependentRequired/removed/backward",
        obj({"a": S, "b": S}, dependentRequired={"a": ["b"]}),
        obj({"a": S, "b": S}),
        "BACKWARD",
        True,
    ),
    case(
        "dependentSchemas/added/backward",
        obj({"a": S, "b": S}),
        obj({"a": S, "b": S}, dependentSchemas={"a": {"required": ["b"]}}),
        "BACKWARD",
        False,
        "DEPENDENCY_SCHEMA_ADDED",
        "#/dependentSchemas/a",
    ),
    # --- strings ----------------------------------------------------------------------------
    case(
        "maxLength/decreased/backward",
        {"type": "string", "maxLength": 20},
        {"type": "string", "maxLength": 10},
        "BACKWARD",
        False,
        "MAX_LENGTH_DECREASED",
        "#/maxLength",
    ),
    case(
        "maxLength/increased/backward",
        {"type": "string", "maxLength": 10},
        {"type": "string", "maxLength": 20},
        "BACKWARD",
        True,
    ),
    case(
        "maxLength/increased/forward",
        {"type": "string", "maxLength": 10},
        {"type": "string", "maxLength": 20},
        "FORWARD",
        False,
        "MAX_LENGTH_DECREASED",
    ),
    case(
        "maxLength/added/backward",
        S,
        {"type": "string", "maxLength": 10},
        "BACKWARD",
        False,
        "MAX_LENGTH_ADDED",
        "#/maxLength",
    ),
    case(
        "minLength/increased/backward",
        {"type": "string", "minLength": 1},
        {"type": "string", "minLength": 2},
        "BACKWARD",
        False,
        "MIN_LENGTH_INCREASED",
        "#/minLength",
    ),
    case("minLength/removed/backward", {"type": "string", "minLength": 1}, S, "BACKWARD", True),
    case(
        "pattern/added/backward",
        S,
        {"type": "string", "pattern": "^[a-z]+$"},
        "BACKWARD",
        False,
        "PATTERN_ADDED",
        "#/pattern",
    ),
    case(
        "pattern/changed/backward",
        {"type": "string", "pattern": "^[a-z]+$"},
        {"type": "string", "pattern": "^[a-z0-9]+$"},
        "BACKWARD",
        False,
        "PATTERN_CHANGED",
        "#/pattern",
    ),
    case("pattern/removed/backward", {"type": "string", "pattern": "^[a-z]+$"}, S, "BACKWARD", True),
    case(
        "pattern/unchanged-with-longer-maxLength/backward",
        {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
        {"type": "string", "pattern": "^[a-z]+$", "maxLength": 9},
        "BACKWARD",
        True,
    ),
    case(
        "format/added/backward",
        S,
        {"type": "string", "format": "date"},
        "BACKWARD",
        False,
        "FORMAT_ADDED",
        "#/format",
    ),
    case(
        "format/changed/backward",
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time"},
        "BACKWARD",
        False,
        "FORMAT_CHANGED",
        "#/format",
    ),
    case("format/removed/backward", {"type": "string", "format": "date"}, S, "BACKWARD", True),
    # --- numbers ----------------------------------------------------------------------------
    case(
        "minimum/increased/backward",
        {**I, "minimum": 0},
        {**I, "minimum": 1},
        "BACKWARD",
        False,
        "MINIMUM_INCREASED",
        "#/minimum",
    ),
    case("minimum/decreased/backward", {**I, "minimum": 1}, {**I, "minimum": 0}, "BACKWARD", True),
    case("maximum/added/backward", N, {**N, "maximum": 100}, "BACKWARD", False, "MAXIMUM_ADDED", "#/maximum"),
    case(
        "exclusiveMaximum/decreased/backward",
        {**N, "exclusiveMaximum": 10},
        {**N, "exclusiveMaximum": 5},
        "BACKWARD",
        False,
        "EXCLUSIVE_MAXIMUM_DECREASED",
        "#/exclusiveMaximum",
    ),
    case(
        "exclusiveMinimum/replaces-minimum-same-value/backward",
        {**N, "minimum": 0},
        {**N, "exclusiveMinimum": 0},
        "BACKWARD",
        False,
        "EXCLUSIVE_MINIMUM_INCREASED",
        "#/exclusiveMinimum",
    ),
    case(
        "exclusiveMinimum/relaxed-to-minimum/backward",
        {**N, "exclusiveMinimum": 0},
        {**N, "minimum": 0},
        "BACKWARD",
        True,
    ),
    case(
        "draft4-exclusive-flag/added/backward",
        {**N, "minimum": 0},
        {**N, "minimum": 0, "exclusiveMinimum": True},
        "BACKWARD",
        False,
        "EXCLUSIVE_MINIMUM_INCREASED",
    ),
    case(
        "draft4-exclusive-flag/removed/backward",
        {**N, "maximum": 9, "exclusiveMaximum": True},
        {**N, "maximum": 9},
        "BACKWARD",
        True,
    ),
    case("integer-bounds/rounding/full", {**I, "exclusiveMinimum": 0}, {**I, "minimum": 1}, "FULL", True),
    case(
        "multipleOf/reader-divides/backward",
        {**I, "multipleOf": 10},
        {**I, "multipleOf": 5},
        "BACKWARD",
        True,
    ),
    case(
        "multipleOf/expanded/backward",
        {**I, "multipleOf": 5},
        {**I, "multipleOf": 10},
        "BACKWARD",
        False,
        "MULTIPLE_OF_EXPANDED",
        "#/multipleOf",
    ),
    case(
        "multipleOf/changed/backward",
        {**I, "multipleOf": 4},
        {**I, "multipleOf": 6},
        "BACKWARD",
        False,
        "MULTIPLE_OF_CHANGED",
    ),
    case(
        "multipleOf/added/backward",
        N,
        {**N, "multipleOf": 2},
        "BACKWARD",
        False,
        "MULTIPLE_OF_ADDED",
        "#/multipleOf",
    ),
    case(
        "multipleOf/decimal/backward", {**N, "multipleOf": 0.1}, {**N, "multipleOf": 0.05}, "BACKWARD", True
    ),
    # --- enum / const -----------------------------------------------------------------------
    case("enum/extended/backward", {"enum": ["A", "B"]}, {"enum": ["A", "B", "C"]}, "BACKWARD", True),
    case(
        "enum/extended/forward",
        {"enum": ["A", "B"]},
        {"enum": ["A", "B", "C"]},
        "FORWARD",
        False,
        "ENUM_ARRAY_NARROWED",
        "#/enum",
    ),
    case(
        "enum/narrowed/backward",
        {"enum": ["A", "B"]},
        {"enum": ["A"]},
        "BACKWARD",
        False,
        "ENUM_ARRAY_NARROWED",
        "#/enum",
    ),
    case(
        "enum/replaced/backward",
        {"enum": ["A", "B"]},
        {"enum": ["C"]},
        "BACKWARD",
        False,
        "ENUM_ARRAY_CHANGED",
        "#/enum",
    ),
    case("enum/added/backward", S, {**S, "enum": ["A"]}, "BACKWARD", False, "ENUM_ARRAY_NARROWED", "#/enum"),
    case("enum/removed/backward", {**S, "enum": ["A"]}, S, "BACKWARD", True),
    case("enum/1-equals-1.0/full", {"enum": [1, 2]}, {"enum": [1.0, 2]}, "FULL", True),
    case(
        "enum/true-is-not-1/backward",
        {"enum": [True]},
        {"enum": [1]},
        "BACKWARD",
        False,
        "ENUM_ARRAY_CHANGED",
    ),
    case(
        "const/changed/backward",
        {"const": "A"},
        {"const": "B"},
        "BACKWARD",
        False,
        "ENUM_ARRAY_CHANGED",
        "#/const",
    ),
    case("const/to-enum-containing-it/backward", {"const": "A"}, {"enum": ["A", "B"]}, "BACKWARD", True),
    case("enum/implies-maxLength/backward", {"enum": ["ab", "abc"]}, {**S, "maxLength": 3}, "BACKWARD", True),
    case("boolean/type-to-enum/backward", {"type": "boolean"}, {"enum": [True, False]}, "BACKWARD", True),
    # --- arrays -----------------------------------------------------------------------------
    case(
        "items/narrowed/backward",
        {"type": "array", "items": N},
        {"type": "array", "items": I},
        "BACKWARD",
        False,
        "TYPE_NARROWED",
        "#/items/type",
    ),
    case(
        "items/widened/backward",
        {"type": "array", "items": I},
        {"type": "array", "items": N},
        "BACKWARD",
        True,
    ),
    case(
        "minItems/increased/backward",
        {"type": "array", "minItems": 1},
        {"type": "array", "minItems": 2},
        "BACKWARD",
        False,
        "MIN_ITEMS_INCREASED",
    ),
    case(
        "maxItems/decreased/backward",
        {"type": "array", "maxItems": 5},
        {"type": "array", "maxItems": 4},
        "BACKWARD",
        False,
        "MAX_ITEMS_DECREASED",
        "#/maxItems",
    ),
    case(
        "uniqueItems/added/backward",
        {"type": "array"},
        {"type": "array", "uniqueItems": True},
        "BACKWARD",
        False,
        "UNIQUE_ITEMS_ADDED",
        "#/uniqueItems",
    ),
    case(
        "uniqueItems/removed/backward",
        {"type": "array", "uniqueItems": True},
        {"type": "array"},
        "BACKWARD",
        True,
    ),
    case(
        "tuple/item-added-to-open/backward",
        {"type": "array", "prefixItems": [S]},
        {"type": "array", "prefixItems": [S, I]},
        "BACKWARD",
        False,
        "ITEM_ADDED_TO_OPEN_CONTENT_MODEL",
        "#/prefixItems/1",
    ),
    case(
        "tuple/item-added-to-closed/backward",
        {"type": "array", "prefixItems": [S], "items": False},
        {"type": "array", "prefixItems": [S, I], "items": False},
        "BACKWARD",
        True,
    ),
    case(
        "tuple/item-removed-from-closed/backward",
        {"type": "array", "prefixItems": [S, I], "items": False},
        {"type": "array", "prefixItems": [S], "items": False},
        "BACKWARD",
        False,
        "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL",
        "#/prefixItems/1",
    ),
    case(
        "additionalItems/removed/backward",
        {"type": "array", "items": [S]},
        {"type": "array", "items": [S], "additionalItems": False},
        "BACKWARD",
        False,
        "ADDITIONAL_ITEMS_REMOVED",
        "#/additionalItems",
    ),
    case(
        "additionalItems/narrowed/backward",
        {"type": "array", "items": [S]},
        {"type": "array", "items": [S], "additionalItems": I},
        "BACKWARD",
        False,
        "ADDITIONAL_ITEMS_NARROWED",
        "#/additionalItems",
    ),
    case(
        "tuple/draft7-form-vs-2020-form/full",
        {"type": "array", "items": [S], "additionalItems": False},
        {"type": "array", "prefixItems": [S], "items": False},
        "FULL",
        True,
    ),
    case(
        "contains/added/backward",
        {"type": "array"},
        {"type": "array", "contains": S},
        "BACKWARD",
        False,
        "CONTAINS_ADDED",
        "#/contains",
    ),
    # --- anyOf / oneOf / allOf / not / if ------------------------------------------------------
    case(
        "anyOf/branch-added/backward",
        {"anyOf": [S, I]},
        {"anyOf": [S, I, {"type": "null"}]},
        "BACKWARD",
        True,
    ),
    case(
        "anyOf/branch-removed/backward",
        {"anyOf": [S, I]},
        {"anyOf": [S]},
        "BACKWARD",
        False,
        "SUM_TYPE_NARROWED",
        "#/anyOf",
    ),
    case(
        "anyOf/branch-added/forward",
        {"anyOf": [S, I]},
        {"anyOf": [S, I, {"type": "null"}]},
        "FORWARD",
        False,
        "SUM_TYPE_NARROWED",
        "#/anyOf",
    ),
    case(
        "anyOf/branch-changed/backward",
        {"anyOf": [S, obj({"a": I})]},
        {"anyOf": [S, obj({"a": S})]},
        "BACKWARD",
        False,
        "COMBINED_TYPE_SUBSCHEMAS_CHANGED",
        "#/anyOf",
    ),
    case(
        "anyOf/branch-widened/backward",
        {"anyOf": [S, obj({"a": I})]},
        {"anyOf": [S, obj({"a": N})]},
        "BACKWARD",
        True,
    ),
    case("anyOf/to-type-array/full", {"anyOf": [S, I]}, {"type": ["string", "integer"]}, "FULL", True),
    case("oneOf/added-with-disjoint-branches/backward", S, {"oneOf": [S, I]}, "BACKWARD", True),
    case(
        "oneOf/overlapping-branches/backward",
        I,
        {"oneOf": [I, N]},
        "BACKWARD",
        False,
        "COMBINED_TYPE_CHANGED",
        "#/oneOf",
    ),
    case(
        "oneOf/discriminated-branch-widened/backward",
        {"oneOf": [EVENT_A, EVENT_B]},
        {"oneOf": [EVENT_A2, EVENT_B]},
        "BACKWARD",
        True,
    ),
    case(
        "oneOf/discriminated-branch-widened/forward",
        {"oneOf": [EVENT_A, EVENT_B]},
        {"oneOf": [EVENT_A2, EVENT_B]},
        "FORWARD",
        False,
        "COMBINED_TYPE_SUBSCHEMAS_CHANGED",
        "#/oneOf",
    ),
    case(
        "oneOf/discriminated-branch-removed/backward",
        {"oneOf": [EVENT_A, EVENT_B]},
        {"oneOf": [EVENT_A]},
        "BACKWARD",
        False,
        "SUM_TYPE_NARROWED",
        "#/oneOf",
    ),
    case(
        "oneOf/unchanged-with-sibling-relaxed/backward",
        {"oneOf": [obj({}, required=["a"]), obj({}, required=["b"])], "maxProperties": 3},
        {"oneOf": [obj({}, required=["a"]), obj({}, required=["b"])], "maxProperties": 4},
        "BACKWARD",
        True,
    ),
    case(
        "allOf/conjunct-added/backward",
        obj({"a": S}),
        {"allOf": [obj({"a": S}), {"required": ["a"]}]},
        "BACKWARD",
        False,
        "REQUIRED_ATTRIBUTE_ADDED",
        "#/allOf/1/required/a",
    ),
    case(
        "allOf/conjunct-removed/backward",
        {"allOf": [obj({"a": S}), {"required": ["a"]}]},
        obj({"a": S}),
        "BACKWARD",
        True,
    ),
    case(
        "allOf/writer-conjuncts-combined/backward",
        {"allOf": [{"type": "object"}, {"required": ["a"]}, {"properties": {"a": S}}]},
        obj({"a": S}, required=["a"]),
        "BACKWARD",
        True,
    ),
    case(
        "not/unchanged-with-other-change/backward",
        {**N, "not": {"const": 0}, "maximum": 5},
        {**N, "not": {"const": 0}},
        "BACKWARD",
        True,
    ),
    case(
        "not/added/backward", N, {**N, "not": {"const": 0}}, "BACKWARD", False, "NOT_TYPE_EXTENDED", "#/not"
    ),
    case(
        "not/exclusion-widened/backward",
        {"not": {"type": "null"}},
        {"not": {"type": ["null", "string"]}},
        "BACKWARD",
        False,
        "NOT_TYPE_EXTENDED",
        "#/not",
    ),
    case(
        "not/exclusion-narrowed/backward",
        {"not": {"type": ["null", "string"]}},
        {"not": {"type": "null"}},
        "BACKWARD",
        True,
    ),
    case("not/removed/backward", {**S, "not": {"const": ""}}, S, "BACKWARD", True),
    case("not/disjoint-by-type/backward", S, {"not": {"type": "null"}}, "BACKWARD", True),
    case(
        "if-then/unchanged-with-other-change/backward",
        {**obj({"a": S, "b": S}), "if": {"required": ["a"]}, "then": {"required": ["b"]}, "maxProperties": 2},
        {**obj({"a": S, "b": S}), "if": {"required": ["a"]}, "then": {"required": ["b"]}},
        "BACKWARD",
        True,
    ),
    case(
        "if-then/added/backward",
        obj({"a": S, "b": S}),
        {**obj({"a": S, "b": S}), "if": {"required": ["a"]}, "then": {"required": ["b"]}},
        "BACKWARD",
        False,
        "REQUIRED_ATTRIBUTE_ADDED",
        "#/then/required/b",
    ),
    # --- $ref and recursion --------------------------------------------------------------------
    case("ref/defs-widened/backward", MONEY_V1, MONEY_V2, "BACKWARD", True),
    case(
        "ref/defs-widened/forward",
        MONEY_V1,
        MONEY_V2,
        "FORWARD",
        False,
        "TYPE_NARROWED",
        "#/$defs/Money/properties/amount/type",
    ),
    case("ref/inlined/full", MONEY_V1, obj({"price": MONEY_V1["$defs"]["Money"]}), "FULL", True),
    case("ref/recursive-widened/backward", TREE_V1, TREE_V2, "BACKWARD", True),
    case(
        "ref/recursive-widened/forward",
        TREE_V1,
        TREE_V2,
        "FORWARD",
        False,
        "TYPE_NARROWED",
        "#/$defs/node/properties/value/type",
    ),
    case("ref/recursive-definitions-vs-defs/full", TREE_DRAFT7, TREE_V1, "FULL", True),
    # --- nesting and pointers --------------------------------------------------------------------
    case(
        "nested/maxLength-pointer/backward",
        obj({"address": obj({"zip": {**S, "maxLength": 10}})}),
        obj({"address": obj({"zip": {**S, "maxLength": 5}})}),
        "BACKWARD",
        False,
        "MAX_LENGTH_DECREASED",
        "#/properties/address/properties/zip/maxLength",
    ),
    case(
        "nested/closed-property-added/forward",
        obj({"address": obj({"zip": S}, additionalProperties=False)}),
        obj({"address": obj({"zip": S, "country": S}, additionalProperties=False)}),
        "FORWARD",
        False,
        "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
        "#/properties/address/properties/country",
    ),
    case(
        "nested/array-of-objects-required/backward",
        obj({"lines": {"type": "array", "items": obj({"sku": S})}}),
        obj({"lines": {"type": "array", "items": obj({"sku": S}, required=["sku"])}}),
        "BACKWARD",
        False,
        "REQUIRED_ATTRIBUTE_ADDED",
        "#/properties/lines/items/required/sku",
    ),
    # --- harmless annotations and NONE ------------------------------------------------------------
    case(
        "annotations/changed/full",
        obj({"a": {**S, "description": "old", "examples": ["x"], "default": "x"}}, title="Old"),
        obj(
            {"a": {**S, "description": "new", "examples": ["y"], "default": "y", "$comment": "c"}},
            title="New",
        ),
        "FULL",
        True,
    ),
    case(
        "annotations/vendor-keyword-changed/full",
        {**S, "x-owner": "team-a"},
        {**S, "x-owner": "team-b"},
        "FULL",
        True,
    ),
    case("mode/none-ignores-everything", S, I, "NONE", True),
    # --- the other direction for keywords above -----------------------------------------------------
    case("bool/false->object/forward", False, obj({"a": S}), "FORWARD", False, "TYPE_CHANGED", "#"),
    case(
        "const/to-enum-containing-it/forward",
        {"const": "A"},
        {"enum": ["A", "B"]},
        "FORWARD",
        False,
        "ENUM_ARRAY_NARROWED",
        "#/const",
    ),
    case(
        "minimum/decreased/forward",
        {**I, "minimum": 1},
        {**I, "minimum": 0},
        "FORWARD",
        False,
        "MINIMUM_INCREASED",
        "#/minimum",
    ),
    case("maximum/added/forward", N, {**N, "maximum": 100}, "FORWARD", True),
    case(
        "minLength/removed/forward",
        {"type": "string", "minLength": 1},
        S,
        "FORWARD",
        False,
        "MIN_LENGTH_ADDED",
        "#/minLength",
    ),
    case(
        "pattern/removed/forward",
        {"type": "string", "pattern": "^[a-z]+$"},
        S,
        "FORWARD",
        False,
        "PATTERN_ADDED",
        "#/pattern",
    ),
    case(
        "format/removed/forward",
        {"type": "string", "format": "date"},
        S,
        "FORWARD",
        False,
        "FORMAT_ADDED",
        "#/format",
    ),
    case(
        "multipleOf/reader-divides/forward",
        {**I, "multipleOf": 10},
        {**I, "multipleOf": 5},
        "FORWARD",
        False,
        "MULTIPLE_OF_EXPANDED",
    ),
    case(
        "items/widened/forward",
        {"type": "array", "items": I},
        {"type": "array", "items": N},
        "FORWARD",
        False,
        "TYPE_NARROWED",
        "#/items/type",
    ),
    case(
        "maxItems/decreased/forward",
        {"type": "array", "maxItems": 5},
        {"type": "array", "maxItems": 4},
        "FORWARD",
        True,
    ),
    case(
        "uniqueItems/added/forward",
        {"type": "array"},
        {"type": "array", "uniqueItems": True},
        "FORWARD",
        True,
    ),
    case(
        "tuple/item-added-to-closed/forward",
        {"type": "array", "prefixItems": [S], "items": False},
        {"type": "array", "prefixItems": [S, I], "items": False},
        "FORWARD",
        False,
        "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL",
        "#/prefixItems/1",
    ),
    case(
        "additionalItems/removed/forward",
        {"type": "array", "items": [S]},
        {"type": "array", "items": [S], "additionalItems": False},
        "FORWARD",
        True,
    ),
    case(
        "maxProperties/added/forward",
        {"type": "object"},
        {"type": "object", "maxProperties": 3},
        "FORWARD",
        True,
    ),
    case(
        "propertyNames/added/forward",
        {"type": "object"},
        {"type": "object", "propertyNames": {"maxLength": 8}},
        "FORWARD",
        True,
    ),
    case(
        "dependentRequired/added/forward",
        obj({"a": S, "b": S}),
        obj({"a": S, "b": S}, dependentRequired={"a": ["b"]}),
        "FORWARD",
        True,
    ),
    case("contains/added/forward", {"type": "array"}, {"type": "array", "contains": S}, "FORWARD", True),
    case(
        "allOf/conjunct-removed/forward",
        {"allOf": [obj({"a": S}), {"required": ["a"]}]},
        obj({"a": S}),
        "FORWARD",
        False,
        "REQUIRED_ATTRIBUTE_ADDED",
        "#/allOf/1/required/a",
    ),
    case("not/added/forward", N, {**N, "not": {"const": 0}}, "FORWARD", True),
    case(
        "oneOf/added-with-disjoint-branches/forward",
        S,
        {"oneOf": [S, I]},
        "FORWARD",
        False,
        "TYPE_CHANGED",
        "#/type",
    ),
]


@pytest.mark.parametrize(("old", "new", "mode", "ok", "kind", "pointer"), CASES)
def test_compatibility_table(old, new, mode, ok, kind, pointer):
    result = is_compatible(new, [old], mode)
    assert result.compatible is ok, result.messages()
    if ok:
        assert result.differences == []
        return
    found = [vd.difference for vd in result.differences]
    assert kind in {d.kind for d in found}, result.messages()
    if pointer is not None:
        assert pointer in {d.pointer for d in found if d.kind == kind}, result.messages()


# --- histories: latest-only vs transitive ---------------------------------------------------------

# v2 was registered while the subject was on NONE, so v1 -> v2 is already a break.
HISTORY = [S, I]
V3 = N


@pytest.mark.parametrize(
    ("mode", "ok", "failing_index"),
    [
        ("BACKWARD", True, None),
        ("BACKWARD_TRANSITIVE", False, 0),
        ("FORWARD", False, 1),
        ("FORWARD_TRANSITIVE", False, 0),
        ("FULL", False, 1),
        ("FULL_TRANSITIVE", False, 0),
    ],
)
def test_transitive_history(mode, ok, failing_index):
    result = is_compatible(V3, HISTORY, mode)
    assert result.compatible is ok
    if failing_index is not None:
        assert failing_index in {vd.previous_index for vd in result.differences}


def test_transitive_passes_when_every_version_is_readable():
    history = [obj({"a": I}), obj({"a": I, "b": {}}), obj({"a": N, "b": {}})]
    assert is_compatible(obj({"a": N, "b": {}, "c": {}}), history, "BACKWARD_TRANSITIVE").compatible


def test_full_tags_direction_and_version():
    result = is_compatible(N, [I], "FULL")
    assert not result.compatible
    [vd] = result.differences
    assert (vd.previous_index, vd.direction, vd.difference.kind) == (0, "FORWARD", "TYPE_NARROWED")
    assert vd.difference.pointer == "#/type"


def test_messages_are_confluent_like():
    result = is_compatible({**S, "maxLength": 5}, [{**S, "maxLength": 10}], "BACKWARD")
    lines = result.messages()
    assert lines[0].startswith(
        '{errorType:"MAX_LENGTH_DECREASED", description:"maxLength: writer 10 -> reader 5"'
    )
    assert (
        'jsonPath:"#/maxLength"' in lines[0]
        and 'reader:"new"' in lines[0]
        and 'writer:"previous[0]"' in lines[0]
    )
    assert lines[-1] == '{compatibility: "BACKWARD"}'
    assert is_compatible(S, [S], "BACKWARD").messages() == []


def test_check_returns_frozen_differences():
    [d] = check(reader={"type": "integer"}, writer={"type": "number"})
    assert d == Difference("#/type", "TYPE_NARROWED", d.message)
    assert "writer" in d.message and "reader" in d.message
    with pytest.raises(AttributeError):
        d.kind = "X"  # type: ignore[misc]


def test_mode_is_validated_and_empty_history_is_compatible():
    with pytest.raises(ValueError):
        is_compatible(S, [S], "SIDEWAYS")
    assert is_compatible(S, [], "FULL_TRANSITIVE") == Result("FULL_TRANSITIVE", True)
    assert is_compatible(S, [S], "backward").compatible


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param({"$ref": "https://example.com/other.json"}, id="remote-ref"),
        pytest.param({"$ref": "other.json#/a"}, id="relative-ref"),
        pytest.param({"$ref": "#/$defs/missing"}, id="dangling-ref"),
        pytest.param({"$ref": "#anchor", "$defs": {"a": {"$anchor": "anchor"}}}, id="anchor-ref"),
        pytest.param({"$defs": {"a": {"$id": "https://x/a", "type": "string"}}}, id="embedded-id"),
        pytest.param({"$dynamicRef": "#meta"}, id="dynamic-ref"),
        pytest.param({"patternProperties": {"(": S}}, id="bad-regex"),
        pytest.param({"type": "text"}, id="unknown-type"),
        pytest.param({"properties": []}, id="malformed-properties"),
    ],
)
def test_unsupported_or_broken_schemas_raise_schema_error(schema):
    with pytest.raises(SchemaError):
        check(schema, S)
    with pytest.raises(SchemaError):
        check(S, schema)


def test_ref_unused_but_remote_is_still_an_error():
    with pytest.raises(SchemaError):
        check({"$defs": {"x": {"$ref": "http://elsewhere/x.json"}}, "type": "string"}, S)


def test_ref_through_own_absolute_id_is_local():
    schema = {
        "$id": "https://flunq.io/s/order.json",
        "$defs": {"a": S},
        "$ref": "https://flunq.io/s/order.json#/$defs/a",
    }
    assert check(schema, S) == []
    assert [d.kind for d in check(schema, I)] == ["TYPE_CHANGED"]


def test_unguarded_recursion_is_a_schema_error():
    loop = {"$defs": {"a": {"anyOf": [{"$ref": "#/$defs/a"}, S]}}, "$ref": "#/$defs/a"}
    with pytest.raises(SchemaError):
        check(loop, I)


def test_unguarded_recursion_through_a_writer_choice_is_a_schema_error():
    # Each split of the writer's oneOf adds the other branch to the exclusions again.
    loop = {"oneOf": [{"const": None}, {"$ref": "#"}]}
    for reader, writer in ((obj({}), loop), (loop, obj({}))):
        with pytest.raises(SchemaError, match="unguarded recursive"):
            is_compatible(reader, [writer], "FULL")


def test_ref_siblings_follow_the_declared_dialect():
    # 2020-12: "required" next to $ref applies, so the writer guarantees "a".
    new_dialect = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": {"o": obj({"a": S})}}
    writer = {**new_dialect, "$ref": "#/$defs/o", "required": ["a"]}
    reader = {**new_dialect, **obj({"a": S}, required=["a"])}
    assert check(reader, writer) == []
    # Without a declared dialect the writer's sibling may be ignored (draft 7), so it proves nothing.
    old_dialect = {"$defs": {"o": obj({"a": S})}, "$ref": "#/$defs/o", "required": ["a"]}
    assert [d.kind for d in check(obj({"a": S}, required=["a"]), old_dialect)] == ["REQUIRED_ATTRIBUTE_ADDED"]


# --- property tests -----------------------------------------------------------------------------

NAMES = ["a", "b", "x_1"]
SCALARS = [None, True, False, 0, 1, -2, 2.5, "", "a", "ab", "xyz"]
_INDEX = {n: st.integers(0, n - 1) for n in range(1, 24)}  # built once: cheap to draw from


def pick(draw, options):
    return options[draw(_INDEX[len(options)])]


def some(draw, options, most):
    return [pick(draw, options) for _ in range(draw(_INDEX[most + 1]))]


def gen_schema(draw, depth: int, refs: bool):
    """A restricted but varied family of schemas (no $schema: 2020-12 semantics)."""
    leaves = [
        lambda: {},
        lambda: {"type": pick(draw, ["string", "integer", "number", "boolean", "null"])},
        lambda: {"type": sorted(set(some(draw, ["string", "integer", "null"], 2)) or {"string"})},
        lambda: {
            "type": "string",
            **pick(draw, [{}, {"minLength": 1}, {"minLength": 2}]),
            **pick(draw, [{}, {"maxLength": 2}, {"maxLength": 4}]),
            **pick(draw, [{}, {"pattern": "^a"}, {"pattern": "b$"}]),
        },
        lambda: {
            "type": pick(draw, ["integer", "number"]),
            **pick(draw, [{}, {"minimum": 0}, {"exclusiveMinimum": 0}, {"minimum": -1}]),
            **pick(draw, [{}, {"maximum": 2}, {"exclusiveMaximum": 2}]),
            **pick(draw, [{}, {"multipleOf": 2}, {"multipleOf": 0.5}]),
        },
        lambda: {"enum": list({repr(v): v for v in some(draw, SCALARS, 3) or [0]}.values())},
        lambda: {"const": pick(draw, SCALARS)},
        lambda: True,
        lambda: False,
    ] + ([lambda: {"$ref": "#/$defs/d"}] if refs else [])
    if depth == 0:
        return pick(draw, leaves)()

    def sub():
        return gen_schema(draw, depth - 1, refs)

    def obj_():
        props = {n: sub() for n in set(some(draw, NAMES, 2))}
        out = {"type": "object", "properties": props}
        if req := sorted(set(some(draw, NAMES, 2))):
            out["required"] = req
        out.update(pick(draw, [{}, {"additionalProperties": False}, {"additionalProperties": None}]))
        if out.get("additionalProperties", 0) is None:
            out["additionalProperties"] = sub()
        if draw(_INDEX[3]) == 0:
            out["patternProperties"] = {"^x_": sub()}
        return {**out, **pick(draw, [{}, {"minProperties": 1}, {"maxProperties": 2}])}

    def arr():
        out = {"type": "array", **pick(draw, [{}, {"minItems": 1}, {"maxItems": 2}, {"uniqueItems": True}])}
        form = draw(_INDEX[3])
        if form == 1:
            out["items"] = sub()
        elif form == 2:
            out["prefixItems"] = [sub() for _ in range(1 + draw(_INDEX[2]))]
            out.update(pick(draw, [{}, {"items": False}]))
        return out

    composites = [
        obj_,
        arr,
        lambda: {"anyOf": [sub() for _ in range(1 + draw(_INDEX[3]))]},
        lambda: {"oneOf": [sub() for _ in range(1 + draw(_INDEX[2]))]},
        lambda: {"allOf": [sub() for _ in range(1 + draw(_INDEX[2]))]},
        lambda: {"not": gen_schema(draw, 0, refs)},
    ]
    return pick(draw, leaves + composites)()


def gen_document(draw, refs: bool = True):
    body = gen_schema(draw, 2, refs)
    if not refs:
        return body
    recursive = obj({"v": I, "next": {"$ref": "#/$defs/d"}})
    defs = recursive if draw(_INDEX[3]) == 0 else gen_schema(draw, 1, refs=False)
    return (
        {"allOf": [body], "$defs": {"d": defs}} if isinstance(body, bool) else {**body, "$defs": {"d": defs}}
    )


documents = st.composite(gen_document)
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(documents())
def test_every_schema_is_compatible_with_itself(schema):
    assert check(schema, schema) == []
    assert check(schema, copy.deepcopy(schema)) == []


@FAST
@given(documents())
# Found by this test: a branch no data satisfies (it requires "a" and forbids it).
@example({"anyOf": [{"type": "object", "properties": {"a": False}, "required": ["a"]}]})
def test_reflexive_without_the_equality_shortcut(schema):
    # With the "identical subtree" shortcut off, the keyword-by-keyword rules alone must agree.
    with mock.patch.object(compatibility._Checker, "use_equality_shortcut", False):
        assert check(schema, schema) == []


def test_a_writer_no_data_satisfies_is_compatible_with_any_choice():
    nothing = {"type": "object", "properties": {"a": False}, "required": ["a"]}
    assert check({"anyOf": [{"type": "string"}, {"type": "integer"}]}, nothing) == []
    assert check({"oneOf": [{"type": "string"}, {"type": "integer"}]}, {"anyOf": [nothing]}) == []


def mutate(draw, schema):
    """A nearby schema: relax or tighten one spot, so that compatible pairs are common."""
    if not isinstance(schema, dict) or not schema or draw(_INDEX[4]) == 0:
        return gen_schema(draw, 1, refs=False) if draw(_INDEX[2]) else schema
    out = dict(schema)
    key = pick(draw, sorted(out))
    value = out[key]
    op = draw(_INDEX[3])
    if op == 0:
        del out[key]
    elif key in ("properties", "patternProperties") and value:
        name = pick(draw, sorted(value))
        out[key] = {**value, name: mutate(draw, value[name])}
    elif key in ("anyOf", "oneOf", "allOf", "prefixItems") and value:
        i = draw(_INDEX[len(value)])
        out[key] = [*value[:i], mutate(draw, value[i]), *value[i + 1 :]]
    elif key in ("items", "additionalProperties", "not"):
        out[key] = mutate(draw, value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        out[key] = value + pick(draw, [-1, 1])
    elif key == "type":
        out[key] = sorted({*([value] if isinstance(value, str) else value), pick(draw, ["null", "number"])})
    elif key == "enum":
        out[key] = [*value, pick(draw, SCALARS)]
    return out


ANYTHING = [*SCALARS, [], {}, [1, "a"], {"a": 1}]
ALL_TYPES = ["string", "integer", "number", "object", "array", "null", "boolean"]


def gen_instance(draw, schema, root, depth: int = 3):
    """A candidate instance shaped after ``schema``; whether it is valid is jsonschema's call."""
    if depth == 0 or not isinstance(schema, dict) or draw(_INDEX[10]) == 0:
        return pick(draw, ANYTHING)
    if "$ref" in schema:
        return gen_instance(draw, root["$defs"]["d"], root, depth - 1)
    for kw in ("anyOf", "oneOf", "allOf"):
        if kw in schema:
            return gen_instance(draw, pick(draw, schema[kw]), root, depth)
    if "enum" in schema or "const" in schema:
        return pick(draw, schema.get("enum", [schema.get("const")]))
    types = schema.get("type", ALL_TYPES)
    t = pick(draw, [types] if isinstance(types, str) else types)
    if t == "string":
        return "".join(some(draw, ["a", "b", "x"], 5))
    if t == "integer":
        return draw(_INDEX[8]) - 3
    if t == "number":
        return pick(draw, [-1.5, 0, 0.5, 1, 2, 2.5, 3.5])
    if t == "object":
        props, other = schema.get("properties", {}), schema.get("additionalProperties", {})
        keys = list(dict.fromkeys([*schema.get("required", []), *some(draw, [*NAMES, "x_2", "zz"], 3)]))
        pattern = schema.get("patternProperties", {}).get("^x_", other)
        return {
            k: gen_instance(draw, props.get(k, pattern if k.startswith("x_") else other), root, depth - 1)
            for k in keys
        }
    if t == "array":
        prefix = schema.get("prefixItems", [])
        n = draw(_INDEX[4])
        return [
            gen_instance(draw, prefix[i] if i < len(prefix) else schema.get("items", {}), root, depth - 1)
            for i in range(n)
        ]
    return pick(draw, [None, True, False])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_no_false_compatible(data):
    """Soundness: if check() finds nothing, every writer-valid instance is reader-valid."""
    draw = data.draw
    writer = gen_document(draw)
    reader = mutate(draw, writer)
    if isinstance(reader, dict):
        reader = {**reader, "$defs": writer["$defs"]}  # keep reader refs resolvable
    if draw(_INDEX[2]):
        reader, writer = writer, reader
    if check(reader, writer):
        return
    writer_ok = jsonschema.Draft202012Validator(writer)
    reader_ok = jsonschema.Draft202012Validator(reader)
    root = writer if isinstance(writer, dict) else {}
    for _ in range(12):
        instance = gen_instance(draw, writer, root)
        if writer_ok.is_valid(instance):
            assert reader_ok.is_valid(instance), (instance, reader, writer)


# -- the work budget ---------------------------------------------------------------------------


def _pairs(n: int, swap: bool = False) -> dict:
    """allOf of n anyOf pairs: a writer split on each anyOf has 2**n branches."""
    first, second = (I, S) if swap else (S, I)
    return {"allOf": [{"anyOf": [obj({f"p{i}": first}), obj({f"q{i}": second})]} for i in range(n)]}


def _nested(kw: str, depth: int) -> dict:
    schema: dict = S
    for i in range(depth):
        schema = {kw: [schema, obj({f"x{i}": schema}), {"type": "integer", "minimum": i}]}
    return schema


@pytest.mark.parametrize(
    ("new", "old"),
    [
        pytest.param(_pairs(9, swap=True), _pairs(9), id="anyOf-pairs"),
        pytest.param(_nested("anyOf", 8), _nested("oneOf", 8), id="nested-choices"),
        pytest.param(
            {"type": "object", "properties": {f"c{i}": I for i in range(1500)},
             "patternProperties": {f"^z{i}$": I for i in range(1500)}},
            {"type": "object", "properties": {f"n{i}": S for i in range(3000)}},
            id="names-times-patterns",
        ),
    ],
)  # fmt: skip
def test_a_comparison_past_the_work_budget_is_refused_quickly(new, old):
    started = time.perf_counter()
    with pytest.raises(SchemaError, match="too complex to compare"):
        is_compatible(new, [old], "FULL")
    assert time.perf_counter() - started < 5


def test_large_real_world_schemas_fit_the_budget():
    props = {
        f"field_{i}": {"type": "object", "required": ["sub0"],
                       "properties": {f"sub{j}": {"type": ["string", "null"], "maxLength": 100} for j in range(10)}}
        for i in range(300)
    }  # fmt: skip
    old = {"type": "object", "properties": props, "required": ["field_0"],
           "patternProperties": {f"^x-{k}-": S for k in range(20)}}  # fmt: skip
    new = {**old, "properties": {**props, "field_new": I}}
    result = is_compatible(new, [old], "FULL_TRANSITIVE")
    assert [d.difference.kind for d in result.differences] == [
        "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
    ]
    assert is_compatible(_pairs(5, swap=True), [_pairs(5)], "FULL").compatible is False


def test_the_budget_is_shared_by_every_version_compared(monkeypatch):
    monkeypatch.setattr(compatibility, "MAX_STEPS", 400)
    single = obj({f"p{i}": S for i in range(10)})
    assert is_compatible(single, [single], "FULL").compatible  # the equality shortcut is cheap
    changed = obj({f"p{i}": I for i in range(10)})
    is_compatible(changed, [single], "BACKWARD")
    with pytest.raises(compatibility.TooComplex):
        is_compatible(changed, [single] * 10, "FULL_TRANSITIVE")
