"""Numbers written as text (positions, versions, ids, ports): ASCII digits only.

``str.isdigit`` also takes ``²``, which ``int`` refuses, and fullwidth or Arabic-Indic digits,
which ``int`` reads: neither is a number this service accepts.
"""

from __future__ import annotations


def is_digits(text: str, max_length: int | None = None) -> bool:
    """``text`` is one or more ASCII digits, at most ``max_length`` of them when given."""
    return text.isascii() and text.isdigit() and (max_length is None or len(text) <= max_length)
