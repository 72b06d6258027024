"""Pull consumer groups: fetch (lease), ack, nack — over a subscription's per-stream queues.

Several consumers (each with a name) share one pull subscription. A fetch leases whole streams:
while a consumer holds a stream, nobody else gets that stream's events, and it gets them in
position order; the stream is released when the consumer has acked or nacked everything it was
given, or when the lease expires (its events are then fetched again, by anyone).

Each message carries an ``ack_id`` (``<delivery id>-<attempt>``). An ack or nack is accepted from
the consumer that fetched that attempt, even after its lease expired, unless the event was fetched
again since (then it is reported as ``stale`` and changes nothing). Every fetch counts as an
attempt; a message fetched ``max_attempts`` times without an ack goes to the dead letter queue.

``nack`` with ``retry`` puts the message (and the messages after it in that stream that the consumer
held) back, due after the subscription's backoff (or ``delay_seconds``); with ``park`` it goes
straight to the dead letter queue and the stream moves on. Messages before it in the stream stay
the consumer's to ack, and the stream stays leased to it until those are settled too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from flunq_events.db import retry_on_deadlock
from flunq_events.errors import Conflict, InvalidRequest
from subscriptions import queue
from subscriptions.models import DeadLetter, Subscription

CONSUMER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,199}\Z")
ACK_ID = re.compile(r"^([0-9]{1,18})-([0-9]{1,9})\Z")
MAX_FETCH = 1000
# Streams locked per round while a fetch fills up.
CANDIDATES = 4


@dataclass(frozen=True, slots=True)
class Message:
    ack_id: str
    attempt: int
    replay_job: int | None
    event: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ack_id": self.ack_id,
            "attempt": self.attempt,
            "replay_job": self.replay_job,
            "event": self.event,
        }


def check_consumer(name: object) -> str:
    if not isinstance(name, str) or not CONSUMER_NAME.match(name):
        raise InvalidRequest(
            "consumer must be 1-200 characters: letters, digits and . _ : @ / - (not first)",
            field="consumer",
        )
    return name


def parse_ack_ids(values: object) -> list[tuple[int, int]]:
    if not isinstance(values, list) or not values:
        raise InvalidRequest("ack_ids must be a non-empty list of ack ids from fetch", field="ack_ids")
    if len(values) > MAX_FETCH:
        raise InvalidRequest(f"at most {MAX_FETCH} ack ids per request", field="ack_ids")
    parsed = []
    for index, value in enumerate(values):
        match = ACK_ID.match(value) if isinstance(value, str) else None
        if match is None:
            raise InvalidRequest(
                f"ack_ids/{index}: {str(value)[:40]!r} is not an ack id", field=f"ack_ids/{index}"
            )
        parsed.append((int(match.group(1)), int(match.group(2))))
    return parsed


def _require_pull(subscription: Subscription) -> None:
    if subscription.kind != Subscription.PULL:
        raise Conflict(
            f"subscription {subscription.id} delivers by {subscription.kind}; fetch, ack and nack "
            "are for pull subscriptions",
            kind=subscription.kind,
        )


@retry_on_deadlock
def fetch(
    subscription: Subscription, *, consumer: str, max_events: int, lease_seconds: float
) -> list[Message]:
    """Lease up to ``max_events`` messages to ``consumer`` (an empty list when nothing is due)."""
    _require_pull(subscription)
    if subscription.state != Subscription.ACTIVE:
        return []
    # Pull needs no worker: the fetch itself moves the subscription's checkpoint forward.
    queue.enqueue(subscription_id=subscription.id)
    queue.finish_replays(subscription.id)
    with transaction.atomic(), connection.cursor() as cursor:
        # Fill from as few streams as possible (whole runs of one stream, in order), and lock
        # candidate streams a few at a time: the consumers of a group then hold few streams each
        # and work on different ones side by side.
        streams: dict[int, str] = {}
        chosen: list[queue.Head] = []
        dead_lettered = 0
        while len(chosen) < max_events:
            cursor.execute(
                """
                SELECT id, stream FROM flunq_subscription_streams
                 WHERE subscription_id = %s AND pending > 0 AND next_attempt_at <= now()
                   AND (lease_until IS NULL OR lease_until < now()) AND NOT (id = ANY(%s))
                 ORDER BY next_attempt_at, id
                 LIMIT %s
                   FOR UPDATE SKIP LOCKED
                """,
                [subscription.id, list(streams), CANDIDATES],
            )
            batch = dict(cursor.fetchall())
            if not batch:
                break
            streams.update(batch)
            want = max_events - len(chosen)
            while True:
                heads = queue.load_heads(
                    [(subscription.id, name) for name in batch.values()], want, with_events=False
                )
                exhausted = [head for head in heads if head.attempts >= subscription.max_attempts]
                for head in exhausted:
                    queue.dead_letter(
                        cursor,
                        [head.id],
                        reason=DeadLetter.MAX_ATTEMPTS,
                        error=f"fetched {head.attempts} times without an ack",
                    )
                dead_lettered += len(exhausted)
                # The messages behind a dead-lettered head are due now: look at these streams again
                # rather than answer short, or empty (which a consumer takes for "caught up"). Each
                # look removes messages, and a fetch dead-letters at most MAX_FETCH, so this ends.
                if not exhausted or dead_lettered >= MAX_FETCH:
                    break
            chosen.extend([head for head in heads if head.attempts < subscription.max_attempts][:want])
        queue.attach_events(chosen, cursor)
        purged = [head for head in chosen if head.event is None]
        if purged:  # removed from the log since they were enqueued: nothing to deliver
            queue.complete(cursor, "d.id = ANY(%s)", [[head.id for head in purged]])
            chosen = [head for head in chosen if head.event is not None]
        if not chosen:
            return []
        lease_until = timezone.now() + timedelta(seconds=lease_seconds)
        cursor.execute(
            """
            UPDATE flunq_deliveries
               SET lease_owner = %s, lease_until = %s, attempts = attempts + 1,
                   first_attempt_at = coalesce(first_attempt_at, now()), last_attempt_at = now()
             WHERE id = ANY(%s)
            RETURNING id, attempts
            """,
            [consumer, lease_until, [head.id for head in chosen]],
        )
        attempts = dict(cursor.fetchall())
        used = [stream_id for stream_id, name in streams.items() if name in {h.stream for h in chosen}]
        cursor.execute(
            "UPDATE flunq_subscription_streams SET lease_owner = %s, lease_until = %s WHERE id = ANY(%s)",
            [consumer, lease_until, used],
        )
    return [
        Message(
            ack_id=f"{head.id}-{attempts[head.id]}",
            attempt=attempts[head.id],
            replay_job=head.replay_job_id,
            event=head.event,
        )
        for head in chosen
    ]


def _owned(cursor, subscription: Subscription, consumer: str, ids: list[tuple[int, int]]) -> list[tuple]:
    """The deliveries named by ``ids`` that this consumer's attempt still owns.

    Rows of (id, stream, attempts, position).
    """
    cursor.execute(
        """
        SELECT d.id, d.stream, d.attempts, d."position" FROM flunq_deliveries d
          JOIN unnest(%s::bigint[], %s::int[]) AS a(id, attempt) ON a.id = d.id AND a.attempt = d.attempts
         WHERE d.subscription_id = %s AND d.lease_owner = %s
        """,
        [[i for i, _ in ids], [a for _, a in ids], subscription.id, consumer],
    )
    return cursor.fetchall()


def _release_if_done(cursor, subscription: Subscription, consumer: str, streams: set[str]) -> None:
    # A stream goes back to the group once this consumer holds none of its messages any more; it
    # queues up behind the other streams (next_attempt_at = now), so every stream gets its turn,
    # unless a nack made it wait longer.
    cursor.execute(
        """
        UPDATE flunq_subscription_streams ss
           SET lease_owner = NULL, lease_until = NULL, next_attempt_at = greatest(ss.next_attempt_at, now())
         WHERE ss.subscription_id = %s AND ss.stream = ANY(%s) AND ss.lease_owner = %s
           AND NOT EXISTS (SELECT 1 FROM flunq_deliveries d
                            WHERE d.subscription_id = ss.subscription_id AND d.stream = ss.stream
                              AND d.lease_owner = %s AND d.lease_until > now())
        """,
        [subscription.id, sorted(streams), consumer, consumer],
    )


def _settle(subscription: Subscription, consumer: str, ids: list[tuple[int, int]], apply) -> dict[str, Any]:
    with transaction.atomic(), connection.cursor() as cursor:
        owned = _owned(cursor, subscription, consumer, ids)
        streams = {row[1] for row in owned}
        queue.lock_streams_by_name(cursor, subscription.id, streams)
        # Re-read under the stream locks: a concurrent fetch may have taken them over meanwhile.
        owned = _owned(cursor, subscription, consumer, ids)
        apply(cursor, owned)
        _release_if_done(cursor, subscription, consumer, {row[1] for row in owned})
    done = {row[0] for row in owned}
    stale = [f"{i}-{a}" for i, a in ids if i not in done]
    return {"count": len(done), "stale": stale}


@retry_on_deadlock
def ack(subscription: Subscription, *, consumer: str, ack_ids: list[tuple[int, int]]) -> dict[str, Any]:
    """Settle messages as processed; returns ``{"acked": n, "stale": [...]}``."""
    _require_pull(subscription)

    def apply(cursor, owned):
        if owned:
            queue.complete(cursor, "d.id = ANY(%s)", [[row[0] for row in owned]])

    result = _settle(subscription, consumer, ack_ids, apply)
    return {"acked": result["count"], "stale": result["stale"]}


@retry_on_deadlock
def nack(
    subscription: Subscription,
    *,
    consumer: str,
    ack_ids: list[tuple[int, int]],
    reason: str,
    action: str,
    delay_seconds: float | None = None,
) -> dict[str, Any]:
    """Give messages back: ``retry`` (after the backoff) or ``park`` (to the dead letter queue)."""
    _require_pull(subscription)

    def apply(cursor, owned):
        if not owned:
            return
        if action == "park":
            queue.dead_letter(cursor, [row[0] for row in owned], reason=DeadLetter.PARKED, error=reason)
            return
        for delivery_id, stream, attempts, position in owned:
            queue.record_failure(cursor, delivery_id, error=reason, status=None, count_attempt=False)
            exhausted = attempts >= subscription.max_attempts
            if exhausted:
                queue.dead_letter(cursor, [delivery_id], reason=DeadLetter.MAX_ATTEMPTS, error=reason)
            # The messages after it that this consumer held go back too: they wait behind it, so
            # the stream's order is kept. Those before it stay the consumer's to ack (nobody has
            # fetched them again), and it keeps the stream until they are settled (_release_if_done).
            cursor.execute(
                "UPDATE flunq_deliveries SET lease_owner = NULL, lease_until = NULL "
                'WHERE subscription_id = %s AND stream = %s AND lease_owner = %s AND ("position", id) > (%s, %s)',
                [subscription.id, stream, consumer, position, delivery_id],
            )
            delay = (
                0.0
                if exhausted
                else (
                    delay_seconds
                    if delay_seconds is not None
                    else queue.backoff_seconds(subscription, attempts)
                )
            )
            cursor.execute(
                """
                UPDATE flunq_subscription_streams
                   SET failed_attempts = failed_attempts + 1, next_attempt_at = now() + make_interval(secs => %s)
                 WHERE subscription_id = %s AND stream = %s
                """,
                [delay, subscription.id, stream],
            )

    result = _settle(subscription, consumer, ack_ids, apply)
    return {"nacked": result["count"], "stale": result["stale"]}
