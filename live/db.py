"""Run the feeds' synchronous database work (catch-up reads, auth look-ups) off the event loop.

A bounded pool of LIVE_DB_THREADS threads, so a thousand clients connecting at once share a few
database connections instead of opening one each. Like Channels' ``database_sync_to_async``,
connections past their CONN_MAX_AGE or broken are closed around each call; every call runs in
autocommit, so no feed ever holds a transaction (which would hold the global horizon back).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.conf import settings
from django.db import close_old_connections

T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def executor() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(settings.LIVE_DB_THREADS, thread_name_prefix="live-db")
        return _executor


def _call(fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
    close_old_connections()
    try:
        return fn(*args, **kwargs)
    finally:
        close_old_connections()


async def run(fn: Callable[..., T], *args, **kwargs) -> T:
    """``fn(*args, **kwargs)`` in the pool; the result, or its exception."""
    return await asyncio.get_running_loop().run_in_executor(executor(), _call, fn, args, kwargs)
