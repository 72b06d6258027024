"""The interface every relay backend implements, and the two kinds of failure it may report.

A backend turns events of the log into broker messages and confirms that the broker has them::

    backend = get_backend("redis")
    backend.connect()
    results = backend.publish(events)   # blocks until the broker acknowledged every message
    backend.close()

``publish`` returns one result per event, in order: ``None`` when the broker acknowledged it, or an
``EventRejected`` when the broker refuses *that event* for good (too large, invalid). The relay
dead-letters rejected events and moves on.

Anything that says nothing about the event itself — connection refused or lost, a timeout waiting
for acks, no leader, the broker loading or out of memory — is raised as ``BrokerUnavailable`` for the
whole batch. The relay then keeps its checkpoint, closes the backend, backs off with jitter and sends
the batch again later; messages the broker did store before the failure arrive twice, which
consumers and the brokers' own dedupe absorb (every message carries the event id).
"""

from __future__ import annotations

from collections.abc import Sequence

from relay.messages import RelayEvent


class BrokerUnavailable(Exception):
    """Connection lost, timed out or refused: retry the batch later, nothing is lost."""


class EventRejected(Exception):
    """The broker will never accept this event as it is: dead-letter it."""


class Backend:
    """One broker. Subclasses override ``connect``, ``publish`` and ``close``.

    ``alias`` names the backend in settings (``BACKEND=redis``) and is the sink's checkpoint name.
    ``reads_binary`` / ``reads_structured``: the content modes ``publish`` uses (``relay.messages``).
    """

    alias = "base"
    reads_binary = True
    reads_structured = True

    def connect(self) -> None:
        """Open connections and create what the broker needs (topic, stream); idempotent."""
        raise NotImplementedError

    def publish(self, events: Sequence[RelayEvent]) -> list[EventRejected | None]:
        """Send ``events`` in order and wait for the broker's acks; one result per event.

        Raises ``BrokerUnavailable`` unless every event is either acknowledged or rejected.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Drop connections; ``connect`` may be called again afterwards."""
        raise NotImplementedError

    def describe(self) -> dict[str, str]:
        """Where messages go (for the admin, health and logs); no secrets."""
        return {}
