"""Rate limit per API token (DRF throttle), off unless ``RATE_LIMIT`` is set.

A fixed window counter per token in the ``throttle`` cache: ``RATE_LIMIT=200/s`` lets each token
make 200 requests per second-long window; the next one gets 429 ``rate_limited`` with
``Retry-After``. The counter lives in Redis when ``REDIS_URL`` is set, so every process of the
service shares it, and in process memory otherwise (then the limit applies per process).

It is a guard against one runaway client, not a defence against floods: unauthenticated requests
are refused before it counts anything, and a fixed window lets up to twice the rate through
around a window's edge. Keep the load balancer's or proxy's own limits in front of the service.
"""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.core.cache import caches
from rest_framework.throttling import BaseThrottle

PERIODS = {"s": 1, "m": 60, "h": 3600}


def parse_rate(rate: str) -> tuple[int, int] | None:
    """``"200/s"`` -> (200, 1); an empty rate -> None (no limit)."""
    if not rate:
        return None
    count, _, unit = rate.partition("/")
    return int(count), PERIODS[unit]


class TokenRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        self.retry_after: float | None = None

    def allow_request(self, request, view) -> bool:
        rate = parse_rate(settings.RATE_LIMIT)
        principal = request.user
        if rate is None or principal is None:
            return True
        count, period = rate
        now = time.time()
        window = int(now // period)
        digest = hashlib.blake2b(principal.name.encode(), digest_size=12).hexdigest()
        key = f"flunq:ratelimit:{digest}:{period}:{window}"
        cache = caches["throttle"]
        cache.add(key, 0, timeout=period + 1)
        try:
            used = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=period + 1)
            used = 1
        if used <= count:
            return True
        self.retry_after = (window + 1) * period - now
        return False

    def wait(self) -> float | None:
        return self.retry_after
