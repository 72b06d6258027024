"""Regular expressions of schemas (``pattern``, ``patternProperties``), matched without backtracking
blow-ups.

Python's ``re`` backtracks without limit (``^(a+)+$`` against ``"a" * 30 + "!"`` takes a minute)
and holds the GIL while it does, so no pattern is matched against client data with it. Everything
here goes through jsonschema-rs, the engine validation uses: patterns are ECMA-262 regular
expressions, run by Rust's linear-time ``regex`` engine; only lookaround and backreferences need
the backtracking ``fancy-regex`` engine, whose steps per match are capped by ``BACKTRACK_LIMIT``.
"""

from __future__ import annotations

import functools

import jsonschema_rs

BACKTRACK_LIMIT = 100_000
OPTIONS = jsonschema_rs.FancyRegexOptions(backtrack_limit=BACKTRACK_LIMIT)


class PatternError(ValueError):
    """Not a regular expression the validator accepts."""


def matcher(pattern: str):
    """A compiled matcher: ``matcher(p).is_valid(text)`` is ``search(p, text)``."""
    try:
        return jsonschema_rs.validator_for(
            {"type": "string", "pattern": pattern}, pattern_options=OPTIONS, validate_formats=False
        )
    except jsonschema_rs.ValidationError as exc:
        raise PatternError(str(exc).splitlines()[0]) from None


_matcher = functools.lru_cache(maxsize=1024)(matcher)


def check(pattern: str) -> None:
    """Raise ``PatternError`` unless the validator accepts ``pattern``."""
    _matcher(pattern)


def search(pattern: str, text: str) -> bool:
    """Does ``pattern`` match somewhere in ``text`` (JSON Schema's unanchored match)?
    A match that exceeds the backtracking limit counts as no match."""
    return _matcher(pattern).is_valid(text)
