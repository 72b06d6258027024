"""Check a JSON Schema document before it is registered, and give it its canonical form.

``check_document(value)`` refuses, with an ``InvalidSchema`` (422) that names the problem and where:

- anything that is not a JSON object (a top-level boolean schema is refused too: use ``{}``);
- a schema larger than ``SCHEMA_MAX_BYTES`` (canonical JSON) or nested deeper than
  ``SCHEMA_MAX_DEPTH``;
- an unknown ``$schema``: draft 2020-12 (the default when ``$schema`` is absent) and draft 7 are
  accepted;
- a document the draft's metaschema rejects (checked with jsonschema's validator for that draft);
- a ``pattern`` or ``patternProperties`` key that is not a valid regular expression;
- a ``$ref``/``$dynamicRef`` that is not local (``#...``): remote references are never fetched;
  a local one that does not resolve (resolved as the validator resolves it: nested ``$id``s
  move the base URI) or does not point at a schema;
- an unguarded recursive ``$ref``: a cycle of references and in-place applicators that never
  descends into the data, which no validator can finish.

``canonical(document)`` is the compact, key-sorted JSON text that identifies a schema: the same
schema registered twice (or under two subjects) gets the same global id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import jsonschema
import jsonschema_rs
import orjson
import referencing
import referencing.exceptions
from django.conf import settings
from jsonschema.validators import Draft7Validator, Draft202012Validator
from referencing.jsonschema import DRAFT7, DRAFT202012

from flunq_events.jsonutil import JSONError, check_value
from schemas import patterns
from schemas.errors import InvalidSchema

DRAFTS: dict[str, tuple[type[jsonschema.protocols.Validator], referencing.Specification]] = {
    "https://json-schema.org/draft/2020-12/schema": (Draft202012Validator, DRAFT202012),
    "http://json-schema.org/draft-07/schema": (Draft7Validator, DRAFT7),
}
DEFAULT_DRAFT = "https://json-schema.org/draft/2020-12/schema"
ACCEPTED_DRAFTS = (
    "https://json-schema.org/draft/2020-12/schema",
    "http://json-schema.org/draft-07/schema#",
)

# Keywords whose values are data, not schemas: a "$ref" inside them is not a reference.
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples", "example"})
# Keywords whose values map names to schemas: the names are not keywords.
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
_REF_KEYWORDS = ("$ref", "$dynamicRef")


def draft_of(document: dict) -> str:
    """The normalised ``$schema`` URI of an accepted draft; raises InvalidSchema for others."""
    declared = document.get("$schema", DEFAULT_DRAFT)
    if not isinstance(declared, str):
        raise InvalidSchema("$schema must be a string URI", pointer="/$schema")
    normal = declared.rstrip("#")
    if normal == "https://json-schema.org/draft-07/schema":
        normal = "http://json-schema.org/draft-07/schema"
    if normal == "http://json-schema.org/draft/2020-12/schema":
        normal = DEFAULT_DRAFT
    if normal not in DRAFTS:
        raise InvalidSchema(
            f"unknown $schema {declared[:200]!r}: accepted drafts are {', '.join(ACCEPTED_DRAFTS)}",
            pointer="/$schema",
            accepted=list(ACCEPTED_DRAFTS),
        )
    return normal


def validator_class(document: dict) -> type[jsonschema.protocols.Validator]:
    return DRAFTS[draft_of(document)][0]


def registry_for(document: dict) -> referencing.Registry:
    """A registry holding only ``document``: nothing is ever retrieved from elsewhere."""
    specification = DRAFTS[draft_of(document)][1]
    resource = specification.create_resource(document)
    return referencing.Registry().with_resource(resource.id() or "", resource)


def canonical(document: Any) -> str:
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS).decode()


def fingerprint(canonical_text: str) -> str:
    return hashlib.sha256(canonical_text.encode()).hexdigest()


def pointer(parts) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def check_document(value: Any) -> dict:
    """``value`` if it is a schema this registry accepts; raises InvalidSchema naming the problem."""
    if not isinstance(value, dict):
        kind = "a boolean" if isinstance(value, bool) else type(value).__name__
        raise InvalidSchema(
            f"a schema must be a JSON object, got {kind}",
            pointer="",
        )
    try:
        check_value(value, max_depth=settings.SCHEMA_MAX_DEPTH)
    except JSONError as exc:
        raise InvalidSchema(f"schema refused: {exc}", limit=settings.SCHEMA_MAX_DEPTH) from None
    size = len(canonical(value).encode())  # UTF-8 bytes: "\U0001f600" is 4 of them
    if size > settings.SCHEMA_MAX_BYTES:
        raise InvalidSchema(
            f"the schema is {size} bytes of JSON; at most {settings.SCHEMA_MAX_BYTES} are accepted",
            limit=settings.SCHEMA_MAX_BYTES,
        )
    cls = validator_class(value)
    error = jsonschema.exceptions.best_match(cls(cls.META_SCHEMA).iter_errors(value))
    if error is not None:
        where = pointer(error.absolute_path)
        raise InvalidSchema(
            f"not a valid {draft_of(value)} schema at {where or '/'}: {_short(error.message)}",
            pointer=where,
            keyword=error.validator,
        )
    _check_patterns_and_refs(value)
    try:  # the engine validation uses must take it (it also rejects what the checks above miss)
        jsonschema_rs.validator_for(
            value, offline=True, validate_formats=False, pattern_options=patterns.OPTIONS
        )
    except Exception as exc:
        raise InvalidSchema(
            f"the validator cannot compile this schema: {_short(str(exc).splitlines()[0] if str(exc) else repr(exc))}"
        ) from None
    return value


def _walk(node: Any, path: tuple) -> Iterator[tuple[dict, tuple]]:
    """Every schema object in ``node`` with its path, skipping data-valued keywords."""
    stack = [(node, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, list):
            stack.extend((child, (*where, index)) for index, child in enumerate(item))
            continue
        if not isinstance(item, dict):
            continue
        yield item, where
        for key, child in item.items():
            if key in _DATA_KEYWORDS:
                continue
            if key in _SCHEMA_MAPS and isinstance(child, dict):
                stack.extend((sub, (*where, key, name)) for name, sub in child.items())
            elif isinstance(child, dict | list):
                stack.append((child, (*where, key)))


def _check_patterns_and_refs(document: dict) -> None:
    for node, where in _walk(document, ()):
        regexes = []
        if isinstance(node.get("pattern"), str):
            regexes.append((node["pattern"], (*where, "pattern")))
        if isinstance(node.get("patternProperties"), dict):
            regexes.extend((key, (*where, "patternProperties", key)) for key in node["patternProperties"])
        for regex, at in regexes:
            try:
                patterns.check(regex)
            except patterns.PatternError as exc:
                raise InvalidSchema(
                    f"{pointer(at)}: {regex[:100]!r} is not a valid regular expression (ECMA-262, as "
                    f"JSON Schema specifies; Python-only syntax such as (?P=name) is not): {_short(str(exc), 200)}",
                    pointer=pointer(at),
                ) from None
        for keyword in _REF_KEYWORDS:
            ref = node.get(keyword)
            if isinstance(ref, str) and not ref.startswith("#"):
                at = pointer((*where, keyword))
                raise InvalidSchema(
                    f"{at}: {ref[:200]!r} is not a local reference; only references into this "
                    "document ('#/$defs/...') are allowed, remote schemas are never fetched",
                    pointer=at,
                )
    _check_references(document)


# Keywords that apply their subschemas to the very instance they are in (no data consumed):
# a cycle through them and $ref never ends. Every other subschema applies to a part of the
# instance (a property, an item, a name), which is what makes a recursive schema terminate.
_IN_PLACE = frozenset(
    {"allOf", "anyOf", "oneOf", "not", "if", "then", "else", "dependentSchemas", "dependencies"}
)
_MAX_REFERENCE_STATES = 200_000


def _check_references(document: dict) -> None:
    """Resolve every ``$ref``/``$dynamicRef`` exactly as the validator does (jsonschema's
    ``referencing`` resolver, whose base URI follows nested ``$id``s), refuse a reference that
    does not resolve or does not point at a schema, and refuse a cycle of references and
    in-place applicators that never consumes data (validating it would never end).

    The states are (schema object, base URI), reached from the root as the validator reaches
    them: a subschema with the resolver of its parent entered into it, a reference target with
    the resolver the lookup returns. Schemas the validator never applies ($defs, keywords next to
    a draft-7 $ref, unknown keywords) are visited too, so that their references are checked."""
    draft = draft_of(document)
    specification = DRAFTS[draft][1]
    legacy_ref = draft != DEFAULT_DRAFT  # draft 7: keywords next to $ref are ignored
    root = registry_for(document).resolver_with_root(specification.create_resource(document))
    paths: dict[int, tuple] = {}
    for node, where in _walk(document, ()):
        paths.setdefault(id(node), where)
    states: dict[tuple[int, str], tuple[dict, Any]] = {}
    in_place: dict[tuple[int, str], list[tuple[tuple[int, str], str]]] = {}

    def state(node: dict, resolver) -> tuple[int, str]:
        key = (id(node), resolver._base_uri)
        if key not in states:
            if len(states) >= _MAX_REFERENCE_STATES:
                raise InvalidSchema("the schema has too many references to check")
            states[key] = (node, resolver)
            todo.append(key)
        return key

    todo: list[tuple[int, str]] = []
    state(document, root)
    while todo:
        key = todo.pop()
        node, resolver = states[key]
        where = paths.get(id(node), ())
        edges = in_place.setdefault(key, [])
        ignores_siblings = legacy_ref and "$ref" in node
        for keyword, child in node.items():
            if keyword in _DATA_KEYWORDS:
                continue
            applied = keyword in _IN_PLACE and not ignores_siblings
            if keyword in _REF_KEYWORDS:
                if not isinstance(child, str) or (keyword == "$dynamicRef" and legacy_ref):
                    continue
                at = pointer((*where, keyword))
                target, target_resolver = _lookup(resolver, child, at)
                if isinstance(target, dict):
                    edges.append((state(target, target_resolver), at))
                continue
            if isinstance(child, dict) and (keyword in _SCHEMA_MAPS or keyword == "dependencies"):
                subs = list(child.values())
            elif isinstance(child, list):
                subs = child
            else:
                subs = [child]
            for sub in subs:
                if isinstance(sub, dict):
                    target = state(sub, resolver.in_subresource(specification.create_resource(sub)))
                    if applied:
                        edges.append((target, pointer((*where, keyword))))
    cycle = _cycle(in_place)
    if cycle is not None:
        raise InvalidSchema(
            f"{cycle}: unguarded recursive $ref: the schema applies itself to the same data without "
            "descending into a property or item, so validating it would never end",
            pointer=cycle,
        )


def _lookup(resolver, ref: str, at: str) -> tuple[Any, Any]:
    try:
        resolved = resolver.lookup(ref)
    except Exception as exc:  # Unresolvable, or a pointer walking into a value it cannot index
        base = resolver._base_uri
        against = f" (resolved against the base URI {base[:200]!r} of an enclosing $id)" if base else ""
        detail = "" if isinstance(exc, referencing.exceptions.Unresolvable) else f": {exc}"
        raise InvalidSchema(
            f"{at}: {ref[:200]!r} does not resolve in this document{against}{detail}", pointer=at
        ) from None
    if not isinstance(resolved.contents, dict | bool):
        raise InvalidSchema(
            f"{at}: {ref[:200]!r} does not point at a schema (it points at a "
            f"{type(resolved.contents).__name__})",
            pointer=at,
        )
    return resolved.contents, resolved.resolver


def _cycle(edges: dict) -> str | None:
    """The pointer of an edge that closes a cycle in ``edges``, or None (iterative DFS)."""
    done: set = set()
    for start in edges:
        if start in done:
            continue
        on_path = {start}
        stack = [(start, iter(edges.get(start, ())))]
        while stack:
            key, children = stack[-1]
            for child, at in children:
                if child in on_path:
                    return at
                if child not in done:
                    on_path.add(child)
                    stack.append((child, iter(edges.get(child, ()))))
                    break
            else:
                stack.pop()
                on_path.discard(key)
                done.add(key)
    return None


def _short(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[:limit] + "..."
