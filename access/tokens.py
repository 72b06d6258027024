"""Resolve a bearer token to a Principal, with a short in-process cache.

A revoked token keeps working for at most TOKEN_CACHE_SECONDS in a process that saw it recently:
the price of not reading the database on every request.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from django.conf import settings

from access.models import ApiToken, hash_token
from access.principal import LOCAL_DEVELOPER, Principal

# LRU: a flood of unknown tokens evicts the least recently used entries, not every entry.
_cache: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()
_CACHE_SIZE = 10_000
_lock = threading.Lock()


def authenticate_token(token: str | None) -> Principal | None:
    """The principal for ``token``; None when it is missing, unknown or revoked."""
    if not settings.AUTH_REQUIRED:
        return LOCAL_DEVELOPER
    if not token:
        return None
    digest = hash_token(token)
    now = time.monotonic()
    with _lock:
        hit = _cache.get(digest)
        if hit is not None:
            _cache.move_to_end(digest)
    if hit and hit[0] > now:
        return hit[1]
    row = ApiToken.objects.filter(token_hash=digest, revoked_at__isnull=True).first()
    principal = Principal(name=row.name, scopes=frozenset(row.scopes), tenant=row.tenant) if row else None
    with _lock:
        _cache[digest] = (now + settings.TOKEN_CACHE_SECONDS, principal)
        _cache.move_to_end(digest)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return principal


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
