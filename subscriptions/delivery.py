"""The delivery worker's work, one step at a time (``python manage.py deliver`` loops over ``step``).

A step:

1. enqueues new events for active subscriptions and running replay jobs (``queue.enqueue``);
2. records the streams whose POSTs have finished, then leases more due streams of webhook
   subscriptions (``SKIP LOCKED``: other worker instances take other streams), reads the first few
   pending events of each and hands them to a thread pool — streams in parallel, the events of one
   stream one after the other, stopping at the first failure. Steps do not wait for the pool, so a
   slow receiver holds up only its own stream;
3. records outcomes in one transaction: delivered events leave the queue; a failed head
   counts an attempt and makes its stream wait out the backoff (or ``Retry-After``), and after
   ``max_attempts`` moves to the dead letter queue so the stream goes on; a 410 disables the
   subscription, and so does failing without a single success for ``WEBHOOK_DISABLE_AFTER_SECONDS``;
4. completes replay jobs whose slice has been settled, and now and then folds idle stream rows
   into their subscription's totals (``queue.compact``).

Only the main thread touches the database; the pool threads only speak HTTP. Delivery is
at-least-once: a worker that dies mid-request leaves its streams leased until the lease expires,
and the next worker sends those events again (receivers dedupe on ``webhook-id``).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections import defaultdict
from concurrent import futures
from typing import Any

import httpx
from django.conf import settings
from django.db import connection, transaction

from subscriptions import queue, webhooks
from subscriptions.models import DeadLetter, Subscription

logger = logging.getLogger(__name__)
# Seconds between compactions of idle stream rows (queue.compact).
COMPACT_EVERY = 60.0


def message_id(subscription_id: Any, head: queue.Head) -> str:
    """``webhook-id``: the same for every attempt at one message, distinct for a replayed copy."""
    base = f"{subscription_id}-{head.position}"
    return f"{base}-replay{head.replay_job_id}" if head.replay_job_id else base


class Deliverer:
    """Delivers webhooks; ``step()`` does one round and says whether there may be more work now."""

    def __init__(
        self, *, owner: str | None = None, concurrency: int | None = None, events_per_stream: int = 10
    ) -> None:
        self.owner = owner or f"deliver-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.concurrency = concurrency or settings.DELIVER_CONCURRENCY
        self.events_per_stream = events_per_stream
        self.pool = futures.ThreadPoolExecutor(self.concurrency, thread_name_prefix="webhook")
        self.inflight: dict[futures.Future, tuple[queue.StreamLease, Subscription]] = {}
        self.clients: dict[tuple[Any, str], httpx.Client] = {}
        self.next_compaction = time.monotonic() + COMPACT_EVERY

    def close(self) -> None:
        self.drain()
        self.pool.shutdown(wait=True)
        for client in self.clients.values():
            client.close()
        self.clients.clear()

    def step(self) -> bool:
        added = queue.enqueue()
        sent = self.deliver()
        queue.finish_replays()
        if time.monotonic() >= self.next_compaction:
            queue.compact()
            self.next_compaction = time.monotonic() + COMPACT_EVERY
        return bool(added or sent or self.inflight)

    # --- webhooks ----------------------------------------------------------------------------------

    def _client(self, subscription: Subscription) -> httpx.Client:
        # One pool per subscription and URL: connections go to one checked address and one host.
        key = (subscription.id, subscription.url)
        client = self.clients.get(key)
        if client is None:
            for old in [k for k in self.clients if k[0] == subscription.id]:
                self.clients.pop(old).close()
            client = self.clients[key] = webhooks.new_client()
        return client

    def deliver(self, wait: float = 0.05) -> int:
        """Record finished streams, lease and start more; returns attempts recorded plus started.

        Streams are POSTed on the pool while later steps go on: one slow receiver (up to the
        timeout per request) holds only its own pool thread, never the other streams. Up to twice
        ``concurrency`` streams are in flight, so a thread that frees up finds work queued.
        """
        finished = [future for future in self.inflight if future.done()]
        recorded = self._record_finished(finished)
        capacity = self.concurrency * 2 - len(self.inflight)
        started = self._start(capacity) if capacity > 0 else 0
        if not recorded and not started and self.inflight:
            # Nothing changed: block briefly on the pool instead of spinning on the database.
            futures.wait(list(self.inflight), timeout=wait, return_when=futures.FIRST_COMPLETED)
        return recorded + started

    def drain(self) -> None:
        """Wait for every stream in flight and record it (its lease is released)."""
        self._record_finished(list(self.inflight))

    def _start(self, capacity: int) -> int:
        lease_seconds = settings.WEBHOOK_TIMEOUT_SECONDS * self.events_per_stream + 30
        leases = queue.lease_streams(
            self.owner, kind=Subscription.WEBHOOK, limit=capacity, lease_seconds=lease_seconds
        )
        if not leases:
            return 0
        heads = queue.load_heads(
            [(lease.subscription_id, lease.stream) for lease in leases], self.events_per_stream
        )
        subscriptions = {
            s.id: s for s in Subscription.objects.filter(id__in={lease.subscription_id for lease in leases})
        }
        by_stream: dict[tuple[Any, str], list[queue.Head]] = defaultdict(list)
        for head in heads:
            by_stream[(head.subscription_id, head.stream)].append(head)
        for lease in leases:
            subscription = subscriptions[lease.subscription_id]
            items = by_stream.get((lease.subscription_id, lease.stream), [])
            future = self.pool.submit(self._post_stream, subscription, self._client(subscription), items)
            self.inflight[future] = (lease, subscription)
        return len(leases)

    def _record_finished(self, finished: list[futures.Future]) -> int:
        if not finished:
            return 0
        leases, results, subscriptions = [], {}, {}
        for future in finished:
            lease, subscription = self.inflight.pop(future)
            leases.append(lease)
            results[(lease.subscription_id, lease.stream)] = future.result()
            subscriptions[subscription.id] = subscription
        self._record(leases, results, subscriptions)
        return sum(len(outcomes) for outcomes in results.values()) or len(finished)

    @staticmethod
    def _post_stream(
        subscription: Subscription, client: httpx.Client, heads: list[queue.Head]
    ) -> list[tuple[queue.Head, webhooks.Outcome]]:
        outcomes = []
        for head in heads:
            if head.event is None:  # purged from the log after it was enqueued
                outcomes.append((head, webhooks.Outcome("ok", error="event purged; nothing sent")))
                continue
            try:
                outcome = webhooks.send(
                    client,
                    subscription.url,
                    subscription.secret,
                    message_id(subscription.id, head),
                    webhooks.encode(head.event),
                )
            except Exception as exc:  # a receiver's answer no code here foresaw: this attempt fails
                logger.exception("webhook attempt failed unexpectedly")
                outcome = webhooks.Outcome("retry", error=f"internal error: {type(exc).__name__}")
            outcomes.append((head, outcome))
            if outcome.kind != "ok":
                break
        return outcomes

    def _record(self, leases, results, subscriptions: dict[Any, Subscription]) -> None:
        succeeded: set[Any] = set()
        failed: set[Any] = set()
        gone: dict[Any, str] = {}
        with transaction.atomic(), connection.cursor() as cursor:
            queue.lock_streams(cursor, [lease.id for lease in leases])
            delivered = [head.id for outcomes in results.values() for head, o in outcomes if o.kind == "ok"]
            if delivered:
                queue.complete(cursor, "d.id = ANY(%s)", [delivered])
            for lease in leases:
                subscription = subscriptions[lease.subscription_id]
                outcomes = results.get((lease.subscription_id, lease.stream), [])
                if any(o.kind == "ok" for _, o in outcomes):
                    succeeded.add(subscription.id)
                last_head, last = outcomes[-1] if outcomes else (None, None)
                if not outcomes:
                    queue.recount(cursor, lease.id)
                if last is None or last.kind == "ok":
                    queue.set_stream(cursor, lease.id, owner=self.owner, delay=0)
                elif last.kind == "gone":
                    # Not an attempt against the event: the receiver asked to stop altogether.
                    queue.record_failure(
                        cursor, last_head.id, error=last.error, status=last.status, count_attempt=False
                    )
                    queue.set_stream(cursor, lease.id, owner=self.owner, delay=0)
                    gone[subscription.id] = last.error
                else:
                    failed.add(subscription.id)
                    attempts = queue.record_failure(
                        cursor, last_head.id, error=last.error, status=last.status, count_attempt=True
                    )
                    if attempts >= subscription.max_attempts:
                        queue.dead_letter(cursor, [last_head.id], reason=DeadLetter.MAX_ATTEMPTS)
                        delay = 0.0
                    elif last.retry_after is not None:
                        delay = last.retry_after
                    else:
                        delay = queue.backoff_seconds(subscription, attempts)
                    queue.set_stream(cursor, lease.id, owner=self.owner, delay=delay, failed=1)
        # Subscription rows are changed after the stream locks are released: scans lock the
        # subscription first and streams second, so the other order here could deadlock.
        self._update_health(succeeded, failed - succeeded, gone)

    @staticmethod
    def _update_health(succeeded: set, failing: set, gone: dict[Any, str]) -> None:
        with connection.cursor() as cursor:
            for subscription_id, error in gone.items():
                cursor.execute(
                    "UPDATE flunq_subscriptions SET state = 'disabled', disabled_reason = %s, updated_at = now() "
                    "WHERE id = %s AND state = 'active'",
                    [error, subscription_id],
                )
                logger.warning("subscription %s disabled: %s", subscription_id, error)
            if succeeded:
                cursor.execute(
                    "UPDATE flunq_subscriptions SET failing_since = NULL "
                    "WHERE id = ANY(%s) AND failing_since IS NOT NULL",
                    [list(succeeded)],
                )
            if failing:
                cursor.execute(
                    """
                    UPDATE flunq_subscriptions
                       SET failing_since = coalesce(failing_since, now()),
                           state = CASE WHEN failing_since < now() - make_interval(secs => %s)
                                        THEN 'disabled' ELSE state END,
                           disabled_reason = CASE WHEN failing_since < now() - make_interval(secs => %s)
                                        THEN 'no successful delivery since ' || failing_since::text
                                        ELSE disabled_reason END
                     WHERE id = ANY(%s) AND state = 'active'
                    """,
                    [
                        settings.WEBHOOK_DISABLE_AFTER_SECONDS,
                        settings.WEBHOOK_DISABLE_AFTER_SECONDS,
                        list(failing),
                    ],
                )
