"""Relay backends, chosen by alias (``BACKEND=redis|kafka|nats``, or several: ``kafka,nats``).

Each alias maps to an import string, loaded only when used, so a deployment without Kafka never
imports kafka-python::

    backend = get_backend("kafka")

``memory`` keeps messages in the process, for tests of the relay loop.
"""

from __future__ import annotations

from django.utils.module_loading import import_string

from relay.backends.base import Backend, BrokerUnavailable, EventRejected

REGISTRY: dict[str, str] = {
    "memory": "relay.backends.memory.MemoryBackend",
    "redis": "relay.backends.redis.RedisBackend",
    "kafka": "relay.backends.kafka.KafkaBackend",
    "nats": "relay.backends.nats.NatsBackend",
}

__all__ = ["REGISTRY", "Backend", "BrokerUnavailable", "EventRejected", "get_backend"]


def get_backend(alias: str, **options) -> Backend:
    """A new, unconnected backend; ``options`` override what it reads from settings."""
    try:
        path = REGISTRY[alias]
    except KeyError:
        raise ValueError(f"unknown relay backend {alias!r}; known: {', '.join(sorted(REGISTRY))}") from None
    return import_string(path)(**options)
