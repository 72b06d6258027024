"""In-memory backend for tests of the relay loop: messages land in a list in this process.

Named brokers live in ``BROKERS`` so a test can look at what was published. Failures are scripted:
``down`` makes every call raise ``BrokerUnavailable``; an event whose id is in ``reject_ids`` is
refused for good (to test dead-lettering); ``max_message_bytes`` refuses larger messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from relay.backends.base import Backend, BrokerUnavailable, EventRejected
from relay.messages import RelayEvent


@dataclass
class MemoryBroker:
    messages: list[RelayEvent] = field(default_factory=list)
    down: bool = False
    reject_ids: set[str] = field(default_factory=set)
    max_message_bytes: int | None = None
    connects: int = 0


BROKERS: dict[str, MemoryBroker] = {}


class MemoryBackend(Backend):
    alias = "memory"

    def __init__(self, name: str = "default") -> None:
        self.broker = BROKERS.setdefault(name, MemoryBroker())
        self.connected = False

    def connect(self) -> None:
        if self.broker.down:
            raise BrokerUnavailable("memory broker is down")
        self.broker.connects += 1
        self.connected = True

    def publish(self, events: Sequence[RelayEvent]) -> list[EventRejected | None]:
        if not self.connected or self.broker.down:
            raise BrokerUnavailable("memory broker is down")
        results: list[EventRejected | None] = []
        for event in events:
            size = len(event.structured())
            if event.id in self.broker.reject_ids:
                results.append(EventRejected(f"event {event.id} rejected"))
            elif self.broker.max_message_bytes is not None and size > self.broker.max_message_bytes:
                results.append(EventRejected(f"message of {size} bytes is too large"))
            else:
                self.broker.messages.append(event)
                results.append(None)
        return results

    def close(self) -> None:
        self.connected = False

    def describe(self) -> dict[str, str]:
        return {"broker": "memory"}
