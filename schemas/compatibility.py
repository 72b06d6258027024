"""JSON Schema compatibility checking for the schema registry (Confluent semantics).

Direction conventions
---------------------
Compatibility is always judged between a *writer* schema (the one data was produced with)
and a *reader* schema (the one a consumer validates with). ``check(reader, writer)`` lists
every reason the reader might reject a document that the writer accepts; an empty list
means every writer-valid document is reader-valid.

The registry modes map onto that exactly as in Confluent Schema Registry:

* ``BACKWARD``: the new schema must read data written with the previous one,
  i.e. ``check(reader=new, writer=previous)``.
* ``FORWARD``: the previous schema must read data written with the new one,
  i.e. ``check(reader=previous, writer=new)``.
* ``FULL``: both. ``*_TRANSITIVE`` compares with every previous version instead of only
  the latest; ``NONE`` checks nothing.

Tiny example::

    old, new = {"type": "integer"}, {"type": "number"}
    check(reader=new, writer=old)                # [] -- a number reader accepts integers
    check(reader=old, writer=new)                # [TYPE_NARROWED at #/type]
    is_compatible(new, [old], "BACKWARD").compatible   # True
    is_compatible(new, [old], "FORWARD").compatible    # False

Each ``is_compatible`` (or ``check``) call has a work budget of ``MAX_STEPS``; past it,
``TooComplex`` (a ``SchemaError``) instead of minutes of CPU.

The checker is *sound but incomplete*: whenever it cannot prove that the reader accepts
everything the writer accepts, it reports a difference. It may therefore call a safe change
incompatible, but it never calls an unsafe change compatible. Messages read
"writer ... -> reader ...", and ``Result.messages()`` says which of old/new each side was.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any
from urllib.parse import unquote

from flunq_events.numbers import is_digits
from schemas import patterns

Schema = dict[str, Any] | bool

MODES = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)


class SchemaError(ValueError):
    """The schema uses something the checker cannot reason about (e.g. a non-local ``$ref``)."""


class TooComplex(SchemaError):
    """Comparing the schemas would take more than ``MAX_STEPS`` steps of the checker."""


# The checker's work budget for one is_compatible (or check) call. A step is a comparison of a
# reader subschema with a writer conjunction, a disjointness proof, a structural-equality node or
# a pattern matched against a name. The largest comparison in the tests and seeds takes a few
# thousand; a second of CPU is roughly 100,000 to 300,000. Past the budget the schemas are
# refused as too complex to compare (422), instead of holding a CPU for minutes.
MAX_STEPS = 500_000


class _Budget:
    __slots__ = ("limit", "matchers", "steps")

    def __init__(self, limit: int) -> None:
        self.steps, self.limit = 0, limit
        self.matchers: dict[str, Any] = {}  # compiled patterns, for this comparison

    def spend(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > self.limit:
            raise TooComplex(
                f"the schemas are too complex to compare: the check needs more than {self.limit} steps "
                "(nested anyOf/oneOf/allOf branches multiply, and so do many properties times many "
                "patternProperties)"
            )


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("compatibility_budget", default=None)


def _spend(n: int = 1) -> None:
    budget = _budget.get()
    if budget is not None:
        budget.spend(n)


@contextlib.contextmanager
def _budgeted():
    """One budget for everything compared inside (an outer budget, if any, is kept)."""
    if _budget.get() is not None:
        yield
        return
    token = _budget.set(_Budget(MAX_STEPS))
    try:
        yield
    finally:
        _budget.reset(token)


@dataclass(frozen=True)
class Difference:
    """One reason the reader may reject writer data."""

    pointer: str  # JSON pointer of the keyword concerned, e.g. "#/properties/amount/type"
    kind: str  # stable code modelled on Confluent's Difference.Type, e.g. "TYPE_NARROWED"
    message: str  # human text, "writer ... -> reader ..."


@dataclass(frozen=True)
class VersionedDifference:
    """A difference found while comparing the new schema with one previous version."""

    previous_index: int  # position in the ``previous`` list given to is_compatible (0 = oldest)
    direction: str  # "BACKWARD": new schema reads that version's data; "FORWARD": the reverse
    difference: Difference


@dataclass
class Result:
    mode: str
    compatible: bool
    differences: list[VersionedDifference] = field(default_factory=list)

    def messages(self) -> list[str]:
        """Confluent-style verbose lines, one per difference, then the mode."""
        lines = []
        for vd in self.differences:
            d, old = vd.difference, f"previous[{vd.previous_index}]"
            reader, writer = ("new", old) if vd.direction == "BACKWARD" else (old, "new")
            lines.append(
                f"{{errorType:{json.dumps(d.kind)}, description:{json.dumps(d.message, ensure_ascii=False)}, "
                f"jsonPath:{json.dumps(d.pointer, ensure_ascii=False)}, direction:{json.dumps(vd.direction)}, "
                f"reader:{json.dumps(reader)}, writer:{json.dumps(writer)}}}"
            )
        if lines:
            lines.append(f"{{compatibility: {json.dumps(self.mode)}}}")
        return lines


def check(reader: Schema, writer: Schema) -> list[Difference]:
    """Every reason ``reader`` might reject data valid under ``writer`` ([] = compatible)."""
    try:
        with _budgeted():
            checker = _Checker(_Root(reader), _Root(writer))
            found = checker.cmp(_Node(reader, "#"), _W((_Node(writer, "#"),)), "#")
    except RecursionError:
        raise SchemaError("the schemas nest too deeply to be compared") from None
    unique: dict[tuple[str, str], Difference] = {}
    for d in found:  # the same problem is often reached through several writer branches
        unique.setdefault((d.pointer, d.kind), d)
    return list(unique.values())


def is_compatible(new: Schema, previous: Sequence[Schema], mode: str) -> Result:
    """Check ``new`` against ``previous`` (oldest first) under a registry compatibility mode."""
    mode = mode.upper()
    if mode not in MODES:
        raise ValueError(f"unknown compatibility mode {mode!r}; expected one of {', '.join(MODES)}")
    if mode == "NONE" or not previous:
        return Result(mode, True)
    last = len(previous) - 1
    targets = range(last + 1) if mode.endswith("_TRANSITIVE") else [last]
    base = mode.removesuffix("_TRANSITIVE")
    found: list[VersionedDifference] = []
    with _budgeted():
        for i in targets:
            if base in ("BACKWARD", "FULL"):
                found += [VersionedDifference(i, "BACKWARD", d) for d in check(new, previous[i])]
            if base in ("FORWARD", "FULL"):
                found += [VersionedDifference(i, "FORWARD", d) for d in check(previous[i], new)]
    return Result(mode, not found, found)


# ---------------------------------------------------------------------------------------------
# Keyword tables. Keywords are interpreted by their shape, across drafts 4 to 2020-12.

_ALL_TYPES = frozenset({"null", "boolean", "object", "array", "number", "integer", "string"})
_SCHEMA_ONE = frozenset(
    {"additionalProperties", "unevaluatedProperties", "additionalItems", "unevaluatedItems"}
    | {"contains", "propertyNames", "not", "if", "then", "else", "contentSchema"}
)
_SCHEMA_MAP = frozenset({"properties", "patternProperties", "dependentSchemas", "$defs", "definitions"})
_SCHEMA_LIST = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
# Everything else (title, description, examples, default, $comment, unknown keywords...) is an
# annotation: validators ignore it, so changing it is harmless.
_VALIDATION = (_SCHEMA_ONE | _SCHEMA_LIST) - {"contentSchema"} | {
    "properties", "patternProperties", "dependentSchemas", "items", "dependencies", "$ref",
    "type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "multipleOf", "minLength", "maxLength", "pattern", "format", "required", "minProperties",
    "maxProperties", "dependentRequired", "minItems", "maxItems", "uniqueItems", "minContains",
    "maxContains", "contentEncoding", "contentMediaType",
}  # fmt: skip
# In-place applicators whose evaluation feeds unevaluatedProperties/unevaluatedItems.
_APPLICATORS = frozenset(
    {"allOf", "anyOf", "oneOf", "not", "$ref", "if", "dependentSchemas", "dependencies", "contains"}
)
_INF = math.inf


@dataclass(frozen=True, eq=False)
class _Node:
    schema: Any
    loc: str  # where it lives in its own root (the key for recursion detection)


@dataclass(frozen=True, eq=False)
class _W:
    """The writer side: a conjunction of schemas, plus schemas the instance is known NOT to match
    (the writer's ``not`` and the sibling branches of a writer ``oneOf`` it was split on)."""

    conj: tuple[_Node, ...]
    excl: tuple[_Node, ...] = ()

    def plus(self, *nodes: _Node) -> _W:
        return _W(self.conj + nodes, self.excl)


def _ptr(base: str, *tokens: Any) -> str:
    return base + "".join("/" + str(t).replace("~", "~0").replace("/", "~1") for t in tokens)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _key(v: Any) -> Any:
    """Hashable JSON identity: 1 == 1.0 but True != 1, as JSON Schema's equality demands."""
    if isinstance(v, bool):
        return ("b", v)
    if _is_num(v):
        return ("n", v)
    if isinstance(v, list):
        return ("a", tuple(_key(x) for x in v))
    if isinstance(v, dict):
        return ("o", tuple(sorted((k, _key(x)) for k, x in v.items())))
    return ("s", v) if isinstance(v, str) else ("z", repr(v))


def _show(v: Any) -> str:
    return "none" if v is None or v in (_INF, -_INF) else json.dumps(v, ensure_ascii=False)


def _jtype(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if _is_num(v):
        return "integer" if float(v).is_integer() else "number"
    return {str: "string", list: "array", dict: "object"}.get(type(v), "null")


def _types_of(s: dict) -> frozenset[str]:
    t = s.get("type")
    return _ALL_TYPES if t is None else frozenset([t] if isinstance(t, str) else t)


def _show_types(ts: frozenset[str]) -> str:
    return "any" if ts >= _ALL_TYPES - {"integer"} else json.dumps(sorted(ts))


def _accepts(types: frozenset[str], t: str) -> bool:
    return t in types or (t == "integer" and "number" in types)


def _inter(a: frozenset[str], b: frozenset[str]) -> frozenset[str]:
    # "number" includes the integers: number & integer = integer, and {number, integer} = {number}.
    both = (a & b) | (
        {"integer"} if ("integer" in a and "number" in b) or ("number" in a and "integer" in b) else set()
    )
    return frozenset(both - {"integer"} if "number" in both else both)


def _trivial(s: Any) -> bool:
    """True for schemas that accept everything: true, {}, or annotations only."""
    return s is True or (isinstance(s, dict) and not any(k in _VALIDATION for k in s))


def _values_of(s: dict) -> list | None:
    vals = list(s["enum"]) if "enum" in s else None
    if "const" in s:
        vals = [s["const"]] if vals is None else [v for v in vals if _key(v) == _key(s["const"])]
    return vals


def _bound(s: dict, side: str) -> tuple[float, bool, str] | None:
    """The tightest lower ("min") or upper ("max") bound: (value, exclusive, keyword)."""
    kw, ekw = ("minimum", "exclusiveMinimum") if side == "min" else ("maximum", "exclusiveMaximum")
    best = None
    if _is_num(s.get(kw)):  # draft 4: a boolean exclusiveMinimum modifies minimum
        excl = s.get(ekw) is True
        best = (s[kw], excl, ekw if excl else kw)
    if _is_num(s.get(ekw)):
        best = _tighter(best, (s[ekw], True, ekw), side == "min")
    return best


def _tighter(a: Any, b: Any, lower: bool) -> Any:
    if a is None or b is None:
        return a if b is None else b
    if a[0] != b[0]:
        return (a if a[0] > b[0] else b) if lower else (a if a[0] < b[0] else b)
    return a if a[1] else b  # same value: the exclusive one is tighter


def _covers(w: Any, r: tuple, lower: bool) -> bool:
    """Does the writer's bound ``w`` imply the reader's bound ``r``?"""
    if w is None:
        return False
    if w[0] != r[0]:
        return w[0] > r[0] if lower else w[0] < r[0]
    return w[1] or not r[1]


def _show_bound(b: Any, side: str) -> str:
    if b is None:
        return "none"
    return (
        ("> " if b[1] else ">= ") + _show(b[0]) if side == "min" else ("< " if b[1] else "<= ") + _show(b[0])
    )


def _frac(x: Any) -> Fraction:
    return Fraction(str(x))  # via str so that 0.1 is 1/10, not its binary approximation


def _regex(p: str) -> Any:
    budget = _budget.get()
    found = budget.matchers.get(p) if budget is not None else None
    if found is None:
        _spend(5)
        try:
            found = patterns.matcher(p)
        except patterns.PatternError as e:
            raise SchemaError(
                f"pattern {p!r} is not a regular expression this checker understands: {e}"
            ) from e
        if budget is not None:
            budget.matchers[p] = found
    return found


def _matches(p: str, s: str) -> bool:
    """Matched by the validator's engine (linear time; see ``schemas.patterns``), never ``re``."""
    _spend()
    try:
        return _regex(p).is_valid(s)
    except TooComplex:
        raise  # the budget is spent: the whole comparison ends, not this one match
    except SchemaError:
        return False


def _literal_prefix(p: str) -> str:
    """Literal text every match of an anchored, alternation-free pattern starts with."""
    if not p.startswith("^") or "|" in p:
        return ""
    i = 1
    while i < len(p) and p[i] not in ".^$*+?()[]{}|\\":
        i += 1
    out = p[1:i]
    return out[:-1] if i < len(p) and p[i] in "*?{" else out  # an optional last char is not fixed


def _patterns_disjoint(p: str, q: str) -> bool:
    a, b = _literal_prefix(p), _literal_prefix(q)
    return bool(a and b) and not a.startswith(b) and not b.startswith(a)


def _obj_model(s: dict) -> tuple[dict, dict, Any, str]:
    """(properties, patternProperties, schema for other names, keyword that holds it)."""
    for kw in ("additionalProperties", "unevaluatedProperties"):
        if kw in s:
            return s.get("properties", {}), s.get("patternProperties", {}), s[kw], kw
    return s.get("properties", {}), s.get("patternProperties", {}), True, "additionalProperties"


def _arr_model(s: dict) -> tuple[list, Any, str, str]:
    """(tuple schemas, schema for the rest, tuple keyword, rest keyword), for both array forms."""
    if "prefixItems" in s:
        prefix, pkw, rkw = s["prefixItems"], "prefixItems", "items"
    elif isinstance(s.get("items"), list):
        prefix, pkw, rkw = s["items"], "items", "additionalItems"
    else:
        prefix, pkw, rkw = [], "items", "items"
    if rkw in s:
        return prefix, s[rkw], pkw, rkw
    return (
        prefix,
        s.get("unevaluatedItems", True),
        pkw,
        "unevaluatedItems" if "unevaluatedItems" in s else rkw,
    )


def _dependencies(s: dict) -> tuple[dict, dict]:
    """({name: [(names, keyword)]}, {name: [(schema, keyword)]}) from all dependency keywords."""
    arrays: dict[str, list] = {}
    schemas: dict[str, list] = {}
    for kw in ("dependencies", "dependentRequired", "dependentSchemas"):
        for name, v in s.get(kw, {}).items():
            (arrays if isinstance(v, list) else schemas).setdefault(name, []).append((v, kw))
    return arrays, schemas


class _Facts:
    """What every instance accepted by a writer conjunction is known to satisfy."""

    def __init__(self, nodes: Sequence[_Node]):
        _spend(20 + len(nodes))
        self.types = _ALL_TYPES
        self.values: list | None = None  # finite set of possible values, when known
        self.lo = self.hi = None
        self.mins = dict.fromkeys(("minLength", "minItems", "minProperties"), 0)
        self.maxs = dict.fromkeys(("maxLength", "maxItems", "maxProperties"), _INF)
        self.multiples: list = []
        self.patterns: set[str] = set()
        self.formats: set[str] = set()
        self.required: set[str] = set()
        self.unique = False
        for n in nodes:
            s = n.schema
            if not isinstance(s, dict):
                continue
            self.types = _inter(self.types, _types_of(s))
            vals = _values_of(s)
            if vals is not None:
                keys = {_key(v) for v in vals}
                self.values = vals if self.values is None else [v for v in self.values if _key(v) in keys]
            self.lo = _tighter(self.lo, _bound(s, "min"), True)
            self.hi = _tighter(self.hi, _bound(s, "max"), False)
            for k in self.mins:
                self.mins[k] = max(self.mins[k], s[k]) if _is_num(s.get(k)) else self.mins[k]
            for k in self.maxs:
                self.maxs[k] = min(self.maxs[k], s[k]) if _is_num(s.get(k)) else self.maxs[k]
            self.multiples += [s["multipleOf"]] if _is_num(s.get("multipleOf")) else []
            self.patterns |= {s["pattern"]} if "pattern" in s else set()
            self.formats |= {s["format"]} if "format" in s else set()
            self.unique |= s.get("uniqueItems") is True
            self.required |= set(s.get("required", ()))
            # Consequences of other keywords, so that e.g. minProperties: 2 is seen as implied
            # by two required names, and maxItems by a closed tuple.
            self.mins["minProperties"] = max(self.mins["minProperties"], len(set(s.get("required", ()))))
            props, pats, ap, _ = _obj_model(s)
            if ap is False and not pats:
                self.maxs["maxProperties"] = min(self.maxs["maxProperties"], len(props))
            prefix, rest, _, _ = _arr_model(s)
            if rest is False:
                self.maxs["maxItems"] = min(self.maxs["maxItems"], len(prefix))
        if self.values is not None:
            self.values = [v for v in self.values if _accepts(self.types, _jtype(v))]
            self.types = frozenset(_jtype(v) for v in self.values)
            strs = [len(v) for v in self.values if isinstance(v, str)]
            if strs:
                self.mins["minLength"] = max(self.mins["minLength"], min(strs))
                self.maxs["maxLength"] = min(self.maxs["maxLength"], max(strs))
            nums = [v for v in self.values if _is_num(v)]
            if nums:
                self.lo = _tighter(self.lo, (min(nums), False, ""), True)
                self.hi = _tighter(self.hi, (max(nums), False, ""), False)
        elif self.types <= {"null", "boolean"}:
            self.values = ([None] if "null" in self.types else []) + (
                [True, False] if "boolean" in self.types else []
            )
        if self.types and self.types <= {"integer"}:  # for integers, > 0 is the same as >= 1
            if self.lo is not None and math.isfinite(self.lo[0]):
                self.lo = (math.floor(self.lo[0]) + 1 if self.lo[1] else math.ceil(self.lo[0]), False, "")
            if self.hi is not None and math.isfinite(self.hi[0]):
                self.hi = (math.ceil(self.hi[0]) - 1 if self.hi[1] else math.floor(self.hi[0]), False, "")
        # A type whose constraints contradict each other has no instances: drop it.
        nodes = [n for n in nodes if isinstance(n.schema, dict)]
        if self.mins["minLength"] > self.maxs["maxLength"]:
            self.types -= {"string"}
        if self.mins["minItems"] > self.maxs["maxItems"]:
            self.types -= {"array"}
        if self.mins["minProperties"] > self.maxs["maxProperties"] or any(
            _Checker.for_name(_W(tuple(nodes)), name) is None for name in self.required
        ):
            self.types -= {"object"}
        lo, hi = self.lo, self.hi
        if lo is not None and hi is not None and (lo[0] > hi[0] or (lo[0] == hi[0] and (lo[1] or hi[1]))):
            self.types -= {"number", "integer"}
        if self.values is not None:
            self.values = [v for v in self.values if _accepts(self.types, _jtype(v))]
        self.empty = not self.types


class _Root:
    """A whole schema document: validates what we rely on and resolves local ``$ref``s."""

    def __init__(self, schema: Schema):
        self.schema = schema
        doc = schema if isinstance(schema, dict) else {}
        sid = doc.get("$id")
        self.base = sid.split("#")[0] if isinstance(sid, str) else ""
        dialect = str(doc.get("$schema", ""))
        # Since 2019-09 keywords next to $ref apply too; before, they were ignored. Without a
        # declared dialect each side gets the reading that is safer for it (see _expand).
        self.ref_siblings = "2019-09" in dialect or "2020-12" in dialect
        self._validate()

    def _validate(self) -> None:
        stack = [(self.schema, "#")]
        while stack:
            s, loc = stack.pop()
            if isinstance(s, bool):
                continue
            if not isinstance(s, dict):
                raise SchemaError(f"{loc}: a schema must be an object or a boolean")
            if loc != "#" and "$id" in s:
                raise SchemaError(f"{loc}: embedded $id (a nested resource) is not supported")
            for kw in ("$dynamicRef", "$recursiveRef"):
                if kw in s:
                    raise SchemaError(f"{loc}: {kw} is not supported")
            if "$ref" in s:
                self.resolve(s["$ref"])
            try:
                types = [s["type"]] if isinstance(s.get("type"), str) else s.get("type", [])
                if not isinstance(types, list) or not set(types) <= _ALL_TYPES:
                    raise SchemaError(f"{loc}/type: unknown type {s['type']!r}")
                for p in s.get("patternProperties", {}):
                    _regex(p)
                for k, v in s.items():
                    if k in _SCHEMA_ONE or (k == "items" and not isinstance(v, list)):
                        stack.append((v, _ptr(loc, k)))
                    elif k in _SCHEMA_LIST or k == "items":
                        stack += [(x, _ptr(loc, k, i)) for i, x in enumerate(v)]
                    elif k in _SCHEMA_MAP or k == "dependencies":
                        stack += [(x, _ptr(loc, k, n)) for n, x in v.items() if not isinstance(x, list)]
            except (AttributeError, TypeError) as e:
                raise SchemaError(f"{loc}: malformed keyword value ({e})") from e

    def resolve(self, ref: Any) -> _Node:
        if not isinstance(ref, str):
            raise SchemaError(f"$ref must be a string, not {ref!r}")
        local = ref[len(self.base) :] if self.base and ref.startswith(self.base) else ref
        if not local.startswith("#"):
            raise SchemaError(f"non-local $ref {ref!r} is not supported")
        frag = unquote(local[1:])
        if frag and not frag.startswith("/"):
            raise SchemaError(f"$ref {ref!r}: plain-name fragments ($anchor) are not supported")
        node = self.schema
        for tok in frag.split("/")[1:]:
            tok = tok.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and tok in node:
                node = node[tok]
            elif isinstance(node, list) and is_digits(tok, 9) and int(tok) < len(node):
                node = node[int(tok)]
            else:
                raise SchemaError(f"$ref {ref!r} does not resolve")
        if not isinstance(node, dict | bool):
            raise SchemaError(f"$ref {ref!r} does not point at a schema")
        return _Node(node, "#" + frag)


class _Checker:
    # Tests switch this off to prove the keyword-by-keyword comparison is reflexive on its own.
    use_equality_shortcut = True

    def __init__(self, reader: _Root, writer: _Root, swaps: int = 0):
        self.r_root, self.w_root, self.swaps = reader, writer, swaps
        self.active: dict[tuple, int] = {}  # comparisons in progress -> instance depth
        self.depth = 0  # how many instance levels (properties, items...) we have descended
        self.disjoint_memo: dict[tuple, bool] = {}

    # -- entry point for one (reader subschema, writer conjunction) pair ------------------------

    def cmp(self, r: _Node, w: _W, ptr: str, alts: int = 0) -> list[Difference]:
        if _trivial(r.schema):
            return []
        _spend(10)
        if self.use_equality_shortcut and any(self.same(r, c) for c in w.conj):
            return []  # the writer enforces this very schema
        wx = self.expand(w, self.w_root)
        if wx is None:
            return []  # the writer accepts nothing
        # Recursion: meeting the same pair again one or more instance levels deeper, we may
        # assume it holds (induction on the depth of the instance). Meeting it at the same
        # depth means a $ref cycle that never consumes input, which no validator can evaluate.
        key = (r.loc, tuple(sorted({c.loc for c in wx.conj})), tuple(sorted({e.loc for e in wx.excl})))
        if key in self.active:
            if self.active[key] == self.depth:
                raise SchemaError(f"unguarded recursive $ref around {r.loc}")
            return []
        self.active[key] = self.depth
        try:
            split = self.split(wx)
            if split is not None:  # writer data comes from one of several branches: check each
                parts, n = split
                return [d for part in parts for d in self.cmp(r, part, ptr, n)]
            return [d for rn, rp in self.expand_reader(r, ptr) for d in self.base(rn, wx, rp, alts)]
        finally:
            del self.active[key]

    def expand(self, w: _W, root: _Root) -> _W | None:
        """Flatten $ref/allOf into the conjunction and move ``not`` to the exclusions.
        Returns None when a conjunct is ``false``. Dropping a constraint here only makes the
        writer larger, which is the safe direction."""
        conj, excl, seen = [], list(w.excl), set()
        todo = list(w.conj)
        while todo:
            n = todo.pop(0)
            _spend(2)
            if n.loc in seen:
                continue  # X and X is X; this also stops $ref cycles
            seen.add(n.loc)
            s = n.schema
            if s is False:
                return None
            if not isinstance(s, dict):
                continue  # true
            s = self.unevaluated(s, root, exact=True)
            if "$ref" in s:
                todo.append(root.resolve(s["$ref"]))
                if root.ref_siblings:
                    todo.append(_Node({k: v for k, v in s.items() if k != "$ref"}, n.loc + "|sib"))
                continue
            todo += [_Node(m, _ptr(n.loc, "allOf", i)) for i, m in enumerate(s.get("allOf", ()))]
            if "not" in s:
                excl.append(_Node(s["not"], _ptr(n.loc, "not")))
            rest = {k: v for k, v in s.items() if k not in ("allOf", "not")}
            if any(k in _VALIDATION for k in rest):
                conj.append(_Node(rest, n.loc))
        return _W(tuple(conj), tuple(excl))

    def expand_reader(self, r: _Node, ptr: str) -> list[tuple[_Node, str]]:
        """The reader's conjuncts, each checked on its own. Keywords next to $ref always count
        here: a stricter reader is the safe direction. Pointers follow a $ref to its target."""
        out, seen, todo = [], set(), [(r, ptr)]
        while todo:
            n, p = todo.pop(0)
            if n.loc in seen:
                continue
            seen.add(n.loc)
            s = n.schema
            if s is False:
                out.append((n, p))
            if not isinstance(s, dict):
                continue
            s = self.unevaluated(s, self.r_root, exact=False)
            if "$ref" in s:
                t = self.r_root.resolve(s["$ref"])
                todo.append((t, t.loc))
                sib = {k: v for k, v in s.items() if k != "$ref"}
                if not _trivial(sib):
                    todo.append((_Node(sib, n.loc + "|sib"), p))
                continue
            todo += [
                (_Node(m, _ptr(n.loc, "allOf", i)), _ptr(p, "allOf", i))
                for i, m in enumerate(s.get("allOf", ()))
            ]
            rest = {k: v for k, v in s.items() if k != "allOf"}
            if not _trivial(rest):
                out.append((_Node(rest, n.loc), p))
        return out

    def unevaluated(self, s: dict, root: _Root, exact: bool) -> dict:
        """Rewrite unevaluatedProperties next to in-place applicators as additionalProperties.

        The names that allOf/$ref subschemas always evaluate become ``true`` properties here
        (those subschemas still constrain them, as conjuncts of their own). For a reader a
        lower bound of that set is safe: it only makes the reader stricter. For a writer it
        must be exact, so with anyOf/oneOf/if... around, the keyword is dropped instead, which
        only makes the writer larger. unevaluatedItems next to applicators is always dropped
        for a writer and kept (stricter) for a reader."""
        if not any(k in s for k in _APPLICATORS):
            return s  # nothing else evaluates: it already means additionalProperties/items
        if exact:
            s = {k: v for k, v in s.items() if k != "unevaluatedItems"}
        up = s.get("unevaluatedProperties", True)
        if up is True or "additionalProperties" in s:
            return s
        rest = {k: v for k, v in s.items() if k != "unevaluatedProperties"}
        found = self.evaluated({k: s[k] for k in ("allOf", "$ref") if k in s}, root, exact, set())
        if exact and (found is None or any(k in s for k in _APPLICATORS - {"allOf", "$ref", "not"})):
            return rest
        names, patterns, everything = found or (set(), set(), False)
        if everything:
            return rest
        rest["properties"] = {**dict.fromkeys(names, True), **s.get("properties", {})}
        rest["patternProperties"] = {**dict.fromkeys(patterns, True), **s.get("patternProperties", {})}
        rest["additionalProperties"] = up
        return rest

    def evaluated(self, s: Any, root: _Root, exact: bool, seen: set) -> tuple[set, set, bool] | None:
        """(names, patterns, all names?) that ``s`` always evaluates for valid instances; None
        when ``exact`` and conditional applicators make the set depend on the instance."""
        if not isinstance(s, dict):
            return set(), set(), False
        if exact and any(k in s for k in ("anyOf", "oneOf", "if", "dependentSchemas", "dependencies")):
            return None
        if "additionalProperties" in s or "unevaluatedProperties" in s:
            return set(), set(), True
        names, patterns, everything = set(s.get("properties", {})), set(s.get("patternProperties", {})), False
        subs = list(s.get("allOf", ()))
        if "$ref" in s:
            target = root.resolve(s["$ref"])
            if exact and not root.ref_siblings and not _trivial({k: v for k, v in s.items() if k != "$ref"}):
                return None  # whether the siblings count depends on the dialect
            if target.loc not in seen:
                seen.add(target.loc)
                subs.append(target.schema)
        for sub in subs:
            found = self.evaluated(sub, root, exact, seen)
            if found is None:
                return None
            names, patterns, everything = names | found[0], patterns | found[1], everything or found[2]
        return names, patterns, everything

    @staticmethod
    def split(w: _W) -> tuple[list[_W], int] | None:
        """Split the writer on its first anyOf/oneOf. A oneOf instance also fails the other
        branches, which we keep as exclusions (that is what lets an unchanged oneOf pass)."""
        for i, n in enumerate(w.conj):
            for kw in ("anyOf", "oneOf"):
                if kw not in n.schema:
                    continue
                branches = n.schema[kw]
                base = _Node({k: v for k, v in n.schema.items() if k != kw}, f"{n.loc}|{kw}")
                parts = []
                for j, b in enumerate(branches):
                    others = [_Node(x, _ptr(n.loc, kw, k)) for k, x in enumerate(branches) if k != j]
                    conj = (*w.conj[:i], base, _Node(b, _ptr(n.loc, kw, j)), *w.conj[i + 1 :])
                    parts.append(_W(conj, w.excl + (tuple(others) if kw == "oneOf" else ())))
                return parts, len(branches)
        return None

    # -- structural equality across the two documents ------------------------------------------

    def same(self, a: _Node, b: _Node) -> bool:
        """Reader node ``a`` means the same as writer node ``b`` (refs followed, annotations ignored)."""
        return self._same(a.schema, b.schema, set())

    def _same(self, a: Any, b: Any, seen: set) -> bool:
        _spend()
        if _trivial(a) or _trivial(b):
            return _trivial(a) and _trivial(b)
        if not isinstance(a, dict) or not isinstance(b, dict):
            return a is b
        keys = {k for k in a if k in _VALIDATION}
        if keys != {k for k in b if k in _VALIDATION}:
            return False
        if "$ref" in keys and len(keys) > 1 and self.r_root.ref_siblings != self.w_root.ref_siblings:
            return False  # the same text means different things in the two dialects
        return all(self._same_value(k, a[k], b[k], seen) for k in keys)

    def _same_value(self, k: str, x: Any, y: Any, seen: set) -> bool:
        if k == "$ref":
            tx, ty = self.r_root.resolve(x), self.w_root.resolve(y)
            if (tx.loc, ty.loc) in seen:
                return True  # coinductive: assume equal while comparing
            seen.add((tx.loc, ty.loc))
            return self._same(tx.schema, ty.schema, seen)
        if k in ("type", "required", "enum", "(names)"):
            as_list = lambda v: v if isinstance(v, list) else [v]  # noqa: E731
            return {_key(v) for v in as_list(x)} == {_key(v) for v in as_list(y)}
        if k in _SCHEMA_MAP or k in ("dependencies", "dependentRequired"):
            return (
                isinstance(x, dict)
                and isinstance(y, dict)
                and x.keys() == y.keys()
                and all(
                    self._same_value("(names)" if isinstance(x[n], list) else "(schema)", x[n], y[n], seen)
                    for n in x
                )
            )
        if isinstance(x, list) or isinstance(y, list):
            if not (k in _SCHEMA_LIST or k == "items"):
                return _key(x) == _key(y)
            return (
                isinstance(x, list)
                and isinstance(y, list)
                and len(x) == len(y)
                and all(self._same(p, q, seen) for p, q in zip(x, y, strict=True))
            )
        if k in _SCHEMA_ONE or k in ("items", "(schema)"):
            return self._same(x, y, seen)
        return _key(x) == _key(y)

    # -- one reader conjunct against the (expanded, split) writer ------------------------------

    def base(self, rn: _Node, w: _W, ptr: str, alts: int) -> list[Difference]:
        r = rn.schema
        f = _Facts(w.conj)
        if f.empty or (f.values is not None and not f.values):
            return []
        if r is False:
            return [
                Difference(
                    ptr, "TYPE_CHANGED", "reader schema is false: it rejects every value the writer allows"
                )
            ]
        out = []
        rtypes = _types_of(r)
        bad = [t for t in sorted(f.types) if not _accepts(rtypes, t)]
        if "type" in r and bad:
            partial = len(bad) < len(f.types) or ("number" in bad and "integer" in rtypes)
            verb = "narrowed" if partial else "changed"
            out.append(
                Difference(
                    _ptr(ptr, "type"),
                    "TYPE_NARROWED" if partial else "TYPE_CHANGED",
                    f"type {verb}: writer {_show_types(f.types)} -> reader {_show_types(rtypes)}",
                )
            )
        live = _inter(f.types, rtypes)  # writer types the reader accepts: their keywords matter
        if not live:
            return out
        out += self.enum(r, f, ptr)
        if "string" in live:
            out += self.string(r, f, ptr)
        if live & {"number", "integer"}:
            out += self.number(r, f, ptr)
        if "object" in live:
            out += self.object(rn, w, f, ptr)
        if "array" in live:
            out += self.array(rn, w, f, ptr)
        if "format" in r and r["format"] not in f.formats:
            kind, was = (
                ("FORMAT_CHANGED", " / ".join(sorted(f.formats))) if f.formats else ("FORMAT_ADDED", "none")
            )
            out.append(
                Difference(_ptr(ptr, "format"), kind, f"format: writer {was} -> reader {_show(r['format'])}")
            )
        for kw in ("contentEncoding", "contentMediaType"):  # not modelled: must be unchanged
            if kw in r and not any(_key(c.schema.get(kw)) == _key(r[kw]) for c in w.conj):
                out.append(
                    Difference(_ptr(ptr, kw), "CONTENT_CHANGED", f"{kw} differs: reader {_show(r[kw])}")
                )
        return out + self.combinators(rn, w, ptr, alts)

    def enum(self, r: dict, f: _Facts, ptr: str) -> list[Difference]:
        out = []
        for kw in ("enum", "const"):
            if kw not in r:
                continue
            allowed = {_key(v) for v in (r["enum"] if kw == "enum" else [r["const"]])}
            shown = _show(r[kw])
            if f.values is None:
                out.append(
                    Difference(
                        _ptr(ptr, kw), "ENUM_ARRAY_NARROWED", f"{kw}: writer any value -> reader {shown}"
                    )
                )
                continue
            missing = [v for v in f.values if _key(v) not in allowed]
            if missing:
                kind = "ENUM_ARRAY_CHANGED" if len(missing) == len(f.values) else "ENUM_ARRAY_NARROWED"
                out.append(
                    Difference(
                        _ptr(ptr, kw),
                        kind,
                        f"{kw}: writer {_show(f.values)} -> reader {shown} (lost {_show(missing)})",
                    )
                )
        return out

    @staticmethod
    def limits(r: dict, f: _Facts, ptr: str, lo_kw: str, hi_kw: str, noun: str) -> list[Difference]:
        out = []
        if _is_num(r.get(lo_kw)) and r[lo_kw] > f.mins[lo_kw]:
            kind = f"MIN_{noun}_ADDED" if f.mins[lo_kw] == 0 else f"MIN_{noun}_INCREASED"
            out.append(
                Difference(
                    _ptr(ptr, lo_kw),
                    kind,
                    f"{lo_kw}: writer {_show(f.mins[lo_kw] or None)} -> reader {r[lo_kw]}",
                )
            )
        if _is_num(r.get(hi_kw)) and r[hi_kw] < f.maxs[hi_kw]:
            kind = f"MAX_{noun}_ADDED" if f.maxs[hi_kw] == _INF else f"MAX_{noun}_DECREASED"
            out.append(
                Difference(
                    _ptr(ptr, hi_kw), kind, f"{hi_kw}: writer {_show(f.maxs[hi_kw])} -> reader {r[hi_kw]}"
                )
            )
        return out

    def string(self, r: dict, f: _Facts, ptr: str) -> list[Difference]:
        out = self.limits(r, f, ptr, "minLength", "maxLength", "LENGTH")
        if "pattern" in r and r["pattern"] not in f.patterns:
            strs = None if f.values is None else [v for v in f.values if isinstance(v, str)]
            if strs is None or not all(_matches(r["pattern"], v) for v in strs):
                # Regex inclusion is undecidable in practice: only an identical pattern is safe.
                kind = "PATTERN_CHANGED" if f.patterns else "PATTERN_ADDED"
                was = " / ".join(sorted(f.patterns)) or "none"
                out.append(
                    Difference(_ptr(ptr, "pattern"), kind, f"pattern: writer {was} -> reader {r['pattern']}")
                )
        return out

    def number(self, r: dict, f: _Facts, ptr: str) -> list[Difference]:
        out = []
        for side, verb in (("min", "INCREASED"), ("max", "DECREASED")):
            rb = _bound(r, side)
            wb = f.lo if side == "min" else f.hi
            if rb is None or _covers(wb, rb, side == "min"):
                continue
            name = ("EXCLUSIVE_" if rb[1] else "") + ("MINIMUM" if side == "min" else "MAXIMUM")
            kind = f"{name}_ADDED" if wb is None else f"{name}_{verb}"
            msg = f"{rb[2]}: writer {_show_bound(wb, side)} -> reader {_show_bound(rb, side)}"
            out.append(Difference(_ptr(ptr, rb[2]), kind, msg))
        if _is_num(r.get("multipleOf")):
            m = _frac(r["multipleOf"])
            divides = lambda x: (_frac(x) / m).denominator == 1  # noqa: E731
            nums = None if f.values is None else [v for v in f.values if _is_num(v)]
            ok = (
                any(divides(x) for x in f.multiples)
                or (f.types <= {"integer"} and (1 / m).denominator == 1)  # e.g. 0.5 divides every integer
                or (nums is not None and all(divides(v) for v in nums))
            )
            if not ok:
                if not f.multiples:
                    kind = "MULTIPLE_OF_ADDED"
                elif any((m / _frac(x)).denominator == 1 for x in f.multiples):
                    kind = "MULTIPLE_OF_EXPANDED"
                else:
                    kind = "MULTIPLE_OF_CHANGED"
                was = _show(f.multiples[0]) if f.multiples else "none"
                out.append(
                    Difference(
                        _ptr(ptr, "multipleOf"), kind, f"multipleOf: writer {was} -> reader {r['multipleOf']}"
                    )
                )
        return out

    # -- objects -------------------------------------------------------------------------------

    @staticmethod
    def for_name(w: _W, name: str) -> list[_Node] | None:
        """The schemas the writer applies to property ``name``; None if it never allows it."""
        _spend(1 + len(w.conj))
        out = []
        for c in w.conj:
            props, pats, ap, kw = _obj_model(c.schema)
            hits = [_Node(props[name], _ptr(c.loc, "properties", name))] if name in props else []
            hits += [
                _Node(s, _ptr(c.loc, "patternProperties", p)) for p, s in pats.items() if _matches(p, name)
            ]
            if not hits and ap is False:
                return None
            out += hits or [_Node(ap, _ptr(c.loc, kw))]
        return out

    def object(self, rn: _Node, w: _W, f: _Facts, ptr: str) -> list[Difference]:
        r = rn.schema
        out = self.limits(r, f, ptr, "minProperties", "maxProperties", "PROPERTIES")
        rprops, rpats, rap, rapkw = _obj_model(r)
        wprops = {n for c in w.conj for n in _obj_model(c.schema)[0]}
        new_required = [n for n in dict.fromkeys(r.get("required", ())) if n not in f.required]
        for name in new_required:
            if name in rprops and name not in wprops:
                unopen = self.for_name(w, name) is None
                kind = f"REQUIRED_PROPERTY_ADDED_TO_{'UNOPEN' if unopen else 'OPEN'}_CONTENT_MODEL"
                why = "never allowed it" if unopen else "did not require it"
                out.append(
                    Difference(
                        _ptr(ptr, "properties", name),
                        kind,
                        f"required property {name!r} added; the writer {why}",
                    )
                )
            else:
                msg = f"{name!r} became required: writer optional -> reader required"
                out.append(Difference(_ptr(ptr, "required", name), "REQUIRED_ATTRIBUTE_ADDED", msg))
        self.depth += 1
        try:
            out += self.named_properties(rn, w, ptr, (rprops, rpats, rap, rapkw), wprops, set(new_required))
            out += self.other_properties(rn, w, ptr, rpats, rap, rapkw)
            if not _trivial(r.get("propertyNames", True)):
                # Names are strings, further limited by the writer's own propertyNames.
                names = [_Node({"type": "string"}, "(names)")]
                names += [
                    _Node(c.schema["propertyNames"], _ptr(c.loc, "propertyNames"))
                    for c in w.conj
                    if "propertyNames" in c.schema
                ]
                out += self.cmp(
                    _Node(r["propertyNames"], _ptr(rn.loc, "propertyNames")),
                    _W(tuple(names)),
                    _ptr(ptr, "propertyNames"),
                )
        finally:
            self.depth -= 1
        return out + self.dependencies(rn, w, f, ptr)

    def named_properties(
        self, rn: _Node, w: _W, ptr: str, model: tuple, wprops: set[str], new_required: set[str]
    ) -> list[Difference]:
        """Names listed in either side's ``properties``."""
        rprops, rpats, rap, rapkw = model
        out = []
        for name in sorted(set(rprops) | wprops):
            ws = self.for_name(w, name)
            if ws is None or (name not in wprops and name in new_required):
                continue  # the writer never sends it / already reported as a new required property
            wsub = _W(tuple(ws))
            readers = (
                [(_Node(rprops[name], _ptr(rn.loc, "properties", name)), _ptr(ptr, "properties", name))]
                if name in rprops
                else []
            )
            readers += [
                (_Node(s, _ptr(rn.loc, "patternProperties", p)), _ptr(ptr, "patternProperties", p))
                for p, s in rpats.items()
                if _matches(p, name)
            ]
            covered_by_pattern = len(readers) > (name in rprops)
            readers = readers or [(_Node(rap, _ptr(rn.loc, rapkw)), _ptr(ptr, rapkw))]
            found = [d for node, p in readers for d in self.cmp(node, wsub, p)]
            if not found:
                continue
            here = _ptr(ptr, "properties", name)
            if name in rprops and name in wprops:
                out += found  # the same property on both sides: report what changed inside it
            elif name in rprops:
                # Added by the reader; the writer could send it via a pattern or additionalProperties.
                open_ = all(_trivial(n.schema) for n in ws)
                kind = (
                    "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
                    if open_
                    else "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                )
                out.append(
                    Difference(
                        here,
                        kind,
                        f"property {name!r} added but the writer could already send it: {found[0].message}",
                    )
                )
            else:
                # Removed by the reader, which now applies its patternProperties/additionalProperties.
                closed = rap is False and not covered_by_pattern
                kind = (
                    "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"
                    if closed
                    else "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                )
                why = "the reader's closed content model rejects it" if closed else found[0].message
                out.append(Difference(here, kind, f"property {name!r} removed: {why}"))
        return out

    def other_properties(
        self, rn: _Node, w: _W, ptr: str, rpats: dict, rap: Any, rapkw: str
    ) -> list[Difference]:
        """Names listed in neither side's ``properties``: they reach the writer through its
        patternProperties or additionalProperties, and the reader must accept those values."""
        out = []
        conjs = w.conj or (_Node({}, "(open)"),)

        def sources(c: _Node, pattern: str | None) -> list[_Node]:
            _, pats, ap, kw = _obj_model(c.schema)
            if pattern is None:  # names for the reader's additionalProperties
                srcs = [
                    _Node(s, _ptr(c.loc, "patternProperties", q)) for q, s in pats.items() if q not in rpats
                ]
                return srcs + ([_Node(ap, _ptr(c.loc, kw))] if ap is not False else [])
            srcs = [
                _Node(s, _ptr(c.loc, "patternProperties", q))
                for q, s in pats.items()
                if not _patterns_disjoint(pattern, q)
            ]
            return srcs + ([_Node(ap, _ptr(c.loc, kw))] if ap is not False and pattern not in pats else [])

        checks = [
            (p, _Node(s, _ptr(rn.loc, "patternProperties", p)), _ptr(ptr, "patternProperties", p))
            for p, s in rpats.items()
        ]
        checks.append((None, _Node(rap, _ptr(rn.loc, rapkw)), _ptr(ptr, rapkw)))
        for pattern, rnode, rp in checks:
            if _trivial(rnode.schema):
                continue
            first = None
            for c in conjs:  # one writer conjunct whose sources all fit is enough
                bad = [(s, d) for s in sources(c, pattern) if (d := self.cmp(rnode, _W((s,)), rp))]
                if not bad:
                    break
                first = first or bad
            else:
                for s, d in first or []:
                    if (
                        isinstance(rnode.schema, dict)
                        and isinstance(s.schema, dict)
                        and not _trivial(s.schema)
                    ):
                        out += d
                    else:
                        kind = (
                            "ADDITIONAL_PROPERTIES_REMOVED"
                            if rnode.schema is False
                            else "ADDITIONAL_PROPERTIES_NARROWED"
                        )
                        what = f"names matching {pattern!r}" if pattern else "other property names"
                        out.append(
                            Difference(
                                rp,
                                kind,
                                f"{what}: writer allowed values via {s.loc} that the reader rejects ({d[0].message})",
                            )
                        )
        return out

    def dependencies(self, rn: _Node, w: _W, f: _Facts, ptr: str) -> list[Difference]:
        out = []
        r_arrays, r_schemas = _dependencies(rn.schema)
        for name, entries in r_arrays.items():
            if self.for_name(w, name) is None:
                continue  # the writer never sends the triggering property
            for names, kw in entries:
                need = set(names) - f.required
                have = [set(v) for c in w.conj for v, _ in _dependencies(c.schema)[0].get(name, [])]
                if need and not any(need <= h for h in have):
                    kind = "DEPENDENCY_ARRAY_EXTENDED" if have else "DEPENDENCY_ARRAY_ADDED"
                    out.append(
                        Difference(_ptr(ptr, kw, name), kind, f"{name!r} now also needs {sorted(need)}")
                    )
        for name, entries in r_schemas.items():
            if self.for_name(w, name) is None:
                continue
            for schema, kw in entries:
                extra = [
                    _Node(v, _ptr(c.loc, k, name))
                    for c in w.conj
                    for v, k in _dependencies(c.schema)[1].get(name, [])
                ]
                found = self.cmp(_Node(schema, _ptr(rn.loc, kw, name)), w.plus(*extra), _ptr(ptr, kw, name))
                if found and extra:
                    out += found
                elif found:
                    out.append(
                        Difference(
                            _ptr(ptr, kw, name),
                            "DEPENDENCY_SCHEMA_ADDED",
                            f"when {name!r} is present: {found[0].message}",
                        )
                    )
        return out

    # -- arrays --------------------------------------------------------------------------------

    def array(self, rn: _Node, w: _W, f: _Facts, ptr: str) -> list[Difference]:
        r = rn.schema
        out = self.limits(r, f, ptr, "minItems", "maxItems", "ITEMS")
        if r.get("uniqueItems") is True and not f.unique and f.maxs["maxItems"] > 1:
            out.append(
                Difference(
                    _ptr(ptr, "uniqueItems"), "UNIQUE_ITEMS_ADDED", "uniqueItems: writer false -> reader true"
                )
            )
        rpre, rrest, rpkw, rrkw = _arr_model(r)
        wm = [(*_arr_model(c.schema), c) for c in w.conj]
        n = max([len(rpre)] + [len(m[0]) for m in wm])
        self.depth += 1
        try:
            for i in range(n):
                if i >= f.maxs["maxItems"]:
                    break  # the writer never sends this many items
                in_r = i < len(rpre)
                rp = _ptr(ptr, rpkw, i) if in_r else _ptr(ptr, rrkw)
                rnode = _Node(rpre[i], _ptr(rn.loc, rpkw, i)) if in_r else _Node(rrest, _ptr(rn.loc, rrkw))
                wnodes = [
                    _Node(pre[i], _ptr(c.loc, pkw, i)) if i < len(pre) else _Node(rest, _ptr(c.loc, rkw))
                    for pre, rest, pkw, rkw, c in wm
                ]
                found = self.cmp(rnode, _W(tuple(wnodes)), rp)
                in_w = any(i < len(m[0]) for m in wm)
                if not found:
                    continue
                if in_r and in_w:
                    out += found
                elif in_r:
                    open_ = all(_trivial(x.schema) for x in wnodes)
                    kind = (
                        "ITEM_ADDED_TO_OPEN_CONTENT_MODEL"
                        if open_
                        else "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                    )
                    out.append(
                        Difference(
                            rp,
                            kind,
                            f"tuple item {i} added but the writer could already send one: {found[0].message}",
                        )
                    )
                else:
                    kind = (
                        "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL"
                        if rrest is False
                        else "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                    )
                    wpkw = next(m[2] for m in wm if i < len(m[0]))
                    out.append(
                        Difference(_ptr(ptr, wpkw, i), kind, f"tuple item {i} removed: {found[0].message}")
                    )
            if f.maxs["maxItems"] > n:  # items past every tuple
                wrests = [_Node(rest, _ptr(c.loc, rkw)) for _, rest, _, rkw, c in wm]
                found = self.cmp(_Node(rrest, _ptr(rn.loc, rrkw)), _W(tuple(wrests)), _ptr(ptr, rrkw))
                if found and rrest is False:
                    out.append(
                        Difference(
                            _ptr(ptr, rrkw),
                            "ADDITIONAL_ITEMS_REMOVED",
                            "reader allows no further items but the writer did",
                        )
                    )
                elif found and n and all(_trivial(x.schema) for x in wrests):
                    out.append(
                        Difference(
                            _ptr(ptr, rrkw), "ADDITIONAL_ITEMS_NARROWED", f"further items: {found[0].message}"
                        )
                    )
                else:
                    out += found
            if "contains" in r:
                out += self.contains(rn, w, ptr)
        finally:
            self.depth -= 1
        return out

    def contains(self, rn: _Node, w: _W, ptr: str) -> list[Difference]:
        r = rn.schema
        need, most = r.get("minContains", 1), r.get("maxContains")
        if need == 0 and most is None:
            return []
        group = ("contains", "minContains", "maxContains")
        for c in w.conj:
            s = c.schema
            if "contains" not in s:
                continue
            if most is None and s.get("minContains", 1) >= need:
                sub = _W((_Node(s["contains"], _ptr(c.loc, "contains")),))
                if not self.cmp(_Node(r["contains"], _ptr(rn.loc, "contains")), sub, _ptr(ptr, "contains")):
                    return []
            if all(self._same_value(k, r.get(k), s.get(k), set()) for k in group):
                return []
        kind = "CONTAINS_CHANGED" if any("contains" in c.schema for c in w.conj) else "CONTAINS_ADDED"
        return [
            Difference(
                _ptr(ptr, "contains"),
                kind,
                "reader's contains/minContains/maxContains is not guaranteed by the writer",
            )
        ]

    # -- anyOf / oneOf / not / if-then-else in the reader ------------------------------------

    def combinators(self, rn: _Node, w: _W, ptr: str, alts: int) -> list[Difference]:
        r, out = rn.schema, []
        for kw in ("anyOf", "oneOf"):
            if kw in r:
                out += self.choice(rn, kw, w, ptr, alts)
        if "not" in r and not self.disjoint(w, _W((_Node(r["not"], _ptr(rn.loc, "not")),))):
            msg = "reader's `not` may exclude data the writer allows"
            out.append(Difference(_ptr(ptr, "not"), "NOT_TYPE_EXTENDED", msg))
        if "if" in r and not (_trivial(r.get("then", True)) and _trivial(r.get("else", True))):
            # Data matching `if` must match `then`, the rest `else`. If the writer has the same
            # `if`, its own then/else tell us more; otherwise the writer must satisfy both.
            wt = we = w
            for c in w.conj:
                if "if" in c.schema and self._same(r["if"], c.schema["if"], set()):
                    wt = w.plus(_Node(c.schema.get("then", True), _ptr(c.loc, "then")))
                    we = w.plus(_Node(c.schema.get("else", True), _ptr(c.loc, "else")))
                    break
            out += self.cmp(_Node(r.get("then", True), _ptr(rn.loc, "then")), wt, _ptr(ptr, "then"))
            out += self.cmp(_Node(r.get("else", True), _ptr(rn.loc, "else")), we, _ptr(ptr, "else"))
        return out

    def choice(self, rn: _Node, kw: str, w: _W, ptr: str, alts: int) -> list[Difference]:
        branches = [(_Node(b, _ptr(rn.loc, kw, i)), _ptr(ptr, kw, i)) for i, b in enumerate(rn.schema[kw])]

        def attempt(wx: _W) -> list[tuple[int, list[Difference]]] | None:
            """None when some reader branch accepts all of ``wx``; else the reasons per branch."""
            reasons = []
            for i, (node, p) in enumerate(branches):
                if self.disjoint(wx, _W((node,)), cheap=True):
                    continue  # e.g. another discriminator value: cannot be the matching branch
                found = self.cmp(node, wx, p)
                if not found and kw == "oneOf":
                    # oneOf also needs every other branch to reject the writer's data.
                    overlap = [
                        j
                        for j, (other, _) in enumerate(branches)
                        if j != i and not self.disjoint(wx, _W((other,)))
                    ]
                    if overlap:
                        msg = f"writer data may match reader {kw} branches {i} and {overlap[0]} at once"
                        found = [Difference(_ptr(ptr, kw), "COMBINED_TYPE_SUBSCHEMAS_CHANGED", msg)]
                if not found:
                    return None
                reasons.append((i, found))
            return reasons

        reasons = attempt(w)
        if reasons is None:
            return []
        if not reasons and self.disjoint(w, _W(()), cheap=True):
            return []  # no data is valid under the writer (e.g. it requires a name it forbids)
        types = _Facts(w.conj).types
        if len(types) > 1 and all(
            attempt(w.plus(_Node({"type": t}, f"(type {t})"))) is None for t in sorted(types)
        ):
            return []  # e.g. writer type [string, integer] vs reader anyOf [{string}, {integer}]
        i, best = min(reasons, key=lambda x: len(x[1])) if reasons else (-1, [])
        if alts == 0:
            kind = "COMBINED_TYPE_CHANGED"  # the writer had no alternatives here
        elif len(branches) < alts:
            kind = "SUM_TYPE_NARROWED"
        else:
            kind = "COMBINED_TYPE_SUBSCHEMAS_CHANGED"
        why = f"; closest is branch {i}: {best[0].message}" if best else " (every branch excludes it)"
        return [Difference(_ptr(ptr, kw), kind, f"no reader {kw} branch accepts all writer data{why}")]

    # -- proving that no instance satisfies both ------------------------------------------------

    def disjoint(self, w: _W, r: _W, depth: int = 0, cheap: bool = False) -> bool:
        """True only if no instance matches the writer ``w`` and the reader conjunction ``r``.
        ``cheap`` skips the costly proof through the writer's exclusions."""
        if depth > 6:
            return False
        _spend(10)
        # Locations identify node contents within one check, so results can be reused.
        key = (*(tuple(n.loc for n in x) for x in (w.conj, w.excl, r.conj)), depth)
        if key not in self.disjoint_memo:
            self.disjoint_memo[key] = self._disjoint(w, r, depth)
        if self.disjoint_memo[key] or cheap:
            return self.disjoint_memo[key]
        # Dearest proof last: the writer's data fails e, and everything r accepts e accepts too.
        return any(self.reader_within(r, e) for e in w.excl)

    def _disjoint(self, w: _W, r: _W, depth: int) -> bool:
        wx, rx = self.expand(w, self.w_root), self.expand(r, self.r_root)
        if wx is None or rx is None:
            return True
        fw, fr = _Facts(wx.conj), _Facts(rx.conj)
        if not _inter(fw.types, fr.types):
            return True
        common = (
            fw.values is None
            or fr.values is None
            or {_key(v) for v in fw.values} & {_key(v) for v in fr.values}
        )
        if not common:
            return True
        if fw.types <= {"object"} or fr.types <= {"object"}:
            # A name one side requires, whose values the two sides give disjoint schemas
            # (the usual discriminator: "kind": {"const": "a"} vs {"const": "b"}).
            for name in sorted(fw.required | fr.required):
                wn, rn = self.for_name(wx, name), self.for_name(rx, name)
                if wn is None or rn is None or self.disjoint(_W(tuple(wn)), _W(tuple(rn)), depth + 1, True):
                    return True
        return False

    def reader_within(self, r: _W, e: _Node) -> bool:
        """Everything reader conjunction ``r`` accepts, writer schema ``e`` accepts (roles swapped)."""
        if self.swaps >= 2:
            return False
        try:
            return not _Checker(self.w_root, self.r_root, self.swaps + 1).cmp(e, r, "#")
        except TooComplex:
            raise  # the budget is spent: the whole comparison ends
        except SchemaError:
            return False
