"""The subscriptions' queues: enqueue from the log, lease streams, settle deliveries.

Every function here is one short transaction (or one statement), so no lock and no transaction id
is held while a webhook is called or a consumer works: an open transaction with an xid would hold
the global horizon back for every reader of the log.

Lock order, everywhere: the subscription row (``FOR NO KEY UPDATE``, scans only), then
``flunq_subscription_streams`` rows in (subscription, stream) order, then ``flunq_deliveries`` rows.
Stream rows are picked with ``SKIP LOCKED``, so several workers and consumers share the work
without waiting on each other.

- ``enqueue``: scan active subscriptions (and running replay jobs) from their checkpoint up to the
  safe horizon into ``flunq_deliveries``, one ``INSERT ... SELECT`` per page.
- ``lease_streams`` / ``load_heads``: take streams whose head is due and not leased, and read the
  first deliveries of each in position order.
- ``complete`` / ``dead_letter`` / ``fail_head`` / ``release``: settle what happened.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from events import horizon as horizon_
from events.selectors import COLUMNS, EventFilter, to_cloudevent
from subscriptions.inputs import FILTER_FIELDS
from subscriptions.models import ReplayJob, Subscription

SCAN_PAGE = 5000


def subscription_filter(subscription: Subscription) -> EventFilter:
    return EventFilter(
        types=list(subscription.types), **{name: getattr(subscription, name) for name in FILTER_FIELDS[1:]}
    )


def backoff_seconds(subscription: Subscription, attempts: int) -> float:
    """Seconds to wait after failed attempt number ``attempts`` (1-based); the last value repeats."""
    schedule = subscription.backoff or settings.SUBSCRIPTION_RETRY_SCHEDULE
    return float(schedule[min(max(attempts, 1), len(schedule)) - 1])


# --- enqueue ---------------------------------------------------------------------------------------

_ENQUEUE = """
WITH slice AS (
    SELECT "position", stream FROM flunq_events
     WHERE "position" > %s AND "position" <= %s{where}
     ORDER BY "position" LIMIT %s
), added AS (
    INSERT INTO flunq_deliveries (subscription_id, stream, "position", replay_job_id)
    SELECT %s::uuid, stream, "position", %s::bigint FROM slice ORDER BY "position"
    ON CONFLICT DO NOTHING
    RETURNING stream
), counted AS (
    INSERT INTO flunq_subscription_streams AS ss (subscription_id, stream, pending)
    SELECT %s::uuid, stream, count(*) FROM added GROUP BY stream ORDER BY stream
    ON CONFLICT (subscription_id, stream) DO UPDATE SET pending = ss.pending + excluded.pending
)
SELECT count(*), max("position"), (SELECT count(*) FROM added) FROM slice
"""


def _enqueue_slice(
    cursor, subscription_id, job_id, after: int, upper: int, where: str, params: list[Any], page: int
) -> tuple[int, int]:
    """Enqueue matching events in (after, upper]; returns (new cursor, rows added)."""
    cursor.execute(
        _ENQUEUE.format(where=where),
        [after, upper, *params, page, subscription_id, job_id, subscription_id],
    )
    count, last, added = cursor.fetchone()
    return (last if count == page else upper), added


def enqueue(
    *, subscription_id=None, horizon: int | None = None, limit: int = 20, page: int = SCAN_PAGE
) -> int:
    """Scan up to ``limit`` active subscriptions and running replay jobs by one page each.

    Returns how many deliveries were added; a scan that reached the horizon still advances the
    checkpoint (the events in between did not match). One transaction per subscription, so the
    xid each holds (and with it the global horizon) is released quickly.
    """
    upper = horizon_.current() if horizon is None else horizon
    candidates = Subscription.objects.filter(state=Subscription.ACTIVE, checkpoint__lt=upper)
    if subscription_id is not None:
        candidates = candidates.filter(id=subscription_id)
    added = 0
    for key in candidates.order_by("checkpoint").values_list("id", flat=True)[:limit]:
        with transaction.atomic():
            subscription = (
                Subscription.objects.select_for_update(skip_locked=True, no_key=True)
                .filter(id=key, state=Subscription.ACTIVE, checkpoint__lt=upper)
                .first()
            )
            if subscription is None:  # another worker is on it, or it changed meanwhile
                continue
            where, params = subscription_filter(subscription).sql()
            with connection.cursor() as cursor:
                new, count = _enqueue_slice(
                    cursor, subscription.id, None, subscription.checkpoint, upper, where, params, page
                )
            added += count
            Subscription.objects.filter(id=subscription.id).update(checkpoint=new)
    added += _enqueue_replays(subscription_id=subscription_id, horizon=upper, limit=limit, page=page)
    return added


class _Canceled(Exception):
    """A replay job was canceled while its page was being enqueued: roll the page back."""


def _enqueue_replays(*, subscription_id, horizon: int, limit: int, page: int) -> int:
    """One page for each running replay job (one transaction per job).

    A job is claimed with a transaction-level advisory lock rather than a lock on its row, so the
    row is locked only by the final update, after the stream rows: the same order in which
    settling deliveries lock them (streams, then job counters), which rules out deadlocks.
    """
    jobs = ReplayJob.objects.select_related("subscription").filter(
        state=ReplayJob.RUNNING, cursor__lt=F("end_position")
    )
    if subscription_id is not None:
        jobs = jobs.filter(subscription_id=subscription_id)
    added = 0
    for job in jobs.order_by("id")[:limit]:
        upper = min(job.end_position, horizon)
        if upper <= job.cursor:
            continue
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_xact_lock(4243, %s)", [job.id % 2**31])
                if not cursor.fetchone()[0]:
                    continue  # another worker is on this job
                job.refresh_from_db(fields=["cursor", "state"])
                if job.state != ReplayJob.RUNNING or upper <= job.cursor:
                    continue
                where, params = subscription_filter(job.subscription).sql()
                more_where, more_params = EventFilter(types=list(job.types), stream=job.stream).sql()
                new, count = _enqueue_slice(
                    cursor, job.subscription_id, job.id, job.cursor, upper, where + more_where,
                    params + more_params, page,
                )  # fmt: skip
                updated = ReplayJob.objects.filter(id=job.id, state=ReplayJob.RUNNING).update(
                    cursor=new, enqueued=F("enqueued") + count
                )
                if not updated:
                    raise _Canceled
                added += count
        except _Canceled:
            continue
    return added


def finish_replays(subscription_id=None) -> int:
    """Mark running replay jobs whose slice is enqueued and fully settled as completed."""
    sql = """
        UPDATE flunq_replay_jobs j SET state = 'completed', finished_at = now()
         WHERE state = 'running' AND cursor >= end_position
           AND NOT EXISTS (SELECT 1 FROM flunq_deliveries d WHERE d.replay_job_id = j.id)
    """
    params: list[Any] = []
    if subscription_id is not None:
        sql += " AND subscription_id = %s"
        params.append(subscription_id)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


# --- leasing ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class StreamLease:
    id: int
    subscription_id: Any
    stream: str


@dataclass(slots=True)
class Head:
    """A pending delivery with its event (None when the event was purged from the log)."""

    id: int
    subscription_id: Any
    stream: str
    position: int
    replay_job_id: int | None
    attempts: int
    event: dict[str, Any] | None


def lease_streams(owner: str, *, kind: str, limit: int, lease_seconds: float) -> list[StreamLease]:
    """Lease up to ``limit`` due, unleased streams of active subscriptions of ``kind``."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE flunq_subscription_streams ss
               SET lease_owner = %s, lease_until = now() + make_interval(secs => %s)
              FROM (SELECT s2.id FROM flunq_subscription_streams s2
                      JOIN flunq_subscriptions s ON s.id = s2.subscription_id
                     WHERE s2.pending > 0 AND s2.next_attempt_at <= now()
                       AND (s2.lease_until IS NULL OR s2.lease_until < now())
                       AND s.state = 'active' AND s.kind = %s
                     ORDER BY s2.next_attempt_at
                     LIMIT %s
                       FOR UPDATE OF s2 SKIP LOCKED) pick
             WHERE ss.id = pick.id
            RETURNING ss.id, ss.subscription_id, ss.stream
            """,
            [owner, lease_seconds, kind, limit],
        )
        return [StreamLease(*row) for row in cursor.fetchall()]


def load_heads(
    streams: Sequence[tuple[Any, str]], per_stream: int, *, with_events: bool = True
) -> list[Head]:
    """The first ``per_stream`` deliveries of each (subscription, stream), in position order."""
    if not streams:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT d.id, d.subscription_id, d.stream, d."position", d.replay_job_id, d.attempts
              FROM unnest(%s::uuid[], %s::text[]) AS l(sub, stream)
              CROSS JOIN LATERAL (
                    SELECT * FROM flunq_deliveries d
                     WHERE d.subscription_id = l.sub AND d.stream = l.stream
                     ORDER BY d."position", d.id LIMIT %s) d
             ORDER BY d.subscription_id, d.stream, d."position", d.id
            """,
            [[s for s, _ in streams], [name for _, name in streams], per_stream],
        )
        heads = [Head(*row, event=None) for row in cursor.fetchall()]
        if with_events:
            attach_events(heads, cursor)
    return heads


def attach_events(heads: Sequence[Head], cursor=None) -> None:
    """Fill ``head.event`` (left None for an event purged from the log since it was enqueued)."""
    events = load_events({head.position for head in heads}, cursor)
    for head in heads:
        head.event = events.get(head.position)


def load_events(positions: Iterable[int], cursor=None) -> dict[int, dict[str, Any]]:
    positions = list(positions)
    if not positions:
        return {}
    if cursor is None:
        with connection.cursor() as own:
            return load_events(positions, own)
    cursor.execute(f'SELECT {COLUMNS} FROM flunq_events WHERE "position" = ANY(%s)', [positions])
    return {row[0]: to_cloudevent(row) for row in cursor.fetchall()}


# --- settling --------------------------------------------------------------------------------------

_SETTLE_COUNTERS = """
, streams AS (
    UPDATE flunq_subscription_streams ss
       SET pending = ss.pending - c.n, {counter} = ss.{counter} + c.n
      FROM (SELECT subscription_id, stream, count(*) AS n FROM settled GROUP BY 1, 2) c
     WHERE ss.subscription_id = c.subscription_id AND ss.stream = c.stream
), jobs AS (
    UPDATE flunq_replay_jobs j SET {counter} = j.{counter} + c.n
      FROM (SELECT replay_job_id, count(*) AS n FROM settled
             WHERE replay_job_id IS NOT NULL GROUP BY 1) c
     WHERE j.id = c.replay_job_id
)
SELECT id, subscription_id, stream FROM settled
"""


def lock_streams(cursor, stream_ids: Iterable[int]) -> None:
    """Lock stream rows in the one global order, so settling transactions never deadlock."""
    ids = sorted(set(stream_ids))
    if ids:
        cursor.execute(
            "SELECT id FROM flunq_subscription_streams WHERE id = ANY(%s) "
            "ORDER BY subscription_id, stream FOR UPDATE",
            [ids],
        )


def lock_streams_by_name(cursor, subscription_id, streams: Iterable[str]) -> None:
    names = sorted(set(streams))
    if names:
        cursor.execute(
            "SELECT id FROM flunq_subscription_streams WHERE subscription_id = %s AND stream = ANY(%s) "
            "ORDER BY subscription_id, stream FOR UPDATE",
            [subscription_id, names],
        )


def complete(cursor, where: str, params: list[Any]) -> list[tuple]:
    """Delete the deliveries matching ``where`` as delivered; returns (id, subscription, stream)."""
    cursor.execute(
        f"WITH settled AS (DELETE FROM flunq_deliveries d WHERE {where} "
        "RETURNING d.id, d.subscription_id, d.stream, d.replay_job_id)"
        + _SETTLE_COUNTERS.format(counter="delivered"),
        params,
    )
    return cursor.fetchall()


def dead_letter(
    cursor, delivery_ids: Sequence[int], *, reason: str, error: str = "", status: int | None = None
) -> list[tuple]:
    """Move deliveries to the dead letter queue; returns (id, subscription, stream) of those moved."""
    if not delivery_ids:
        return []
    cursor.execute(
        """
        WITH moved AS (
            DELETE FROM flunq_deliveries d WHERE d.id = ANY(%s)
            RETURNING d.id, d.subscription_id, d.stream, d."position", d.replay_job_id, d.attempts,
                      d.last_error, d.last_status, d.first_attempt_at, d.last_attempt_at
        ), settled AS (
            INSERT INTO flunq_dead_letters (subscription_id, stream, "position", event_id, source, "type",
                                            replay_job_id, reason, attempts, last_error, last_status,
                                            first_attempt_at, last_attempt_at)
            SELECT m.subscription_id, m.stream, m."position", coalesce(e.id, ''), coalesce(e.source, ''),
                   coalesce(e."type", ''), m.replay_job_id, %s, m.attempts,
                   coalesce(nullif(%s, ''), m.last_error), coalesce(%s, m.last_status),
                   m.first_attempt_at, m.last_attempt_at
              FROM moved m LEFT JOIN flunq_events e ON e."position" = m."position"
            RETURNING id, subscription_id, stream, replay_job_id
        )"""
        + _SETTLE_COUNTERS.format(counter="dead_lettered"),
        [list(delivery_ids), reason, error, status],
    )
    return cursor.fetchall()


def record_failure(cursor, delivery_id: int, *, error: str, status: int | None, count_attempt: bool) -> int:
    """Note a failed attempt on a delivery; returns its attempts so far."""
    cursor.execute(
        """
        UPDATE flunq_deliveries
           SET attempts = attempts + %s, last_error = %s, last_status = %s,
               first_attempt_at = coalesce(first_attempt_at, now()), last_attempt_at = now(),
               lease_owner = NULL, lease_until = NULL
         WHERE id = %s
        RETURNING attempts
        """,
        [1 if count_attempt else 0, error[:2000], status, delivery_id],
    )
    row = cursor.fetchone()
    return row[0] if row else 0


def set_stream(cursor, stream_id: int, *, owner: str | None, delay: float | None, failed: int = 0) -> None:
    """Release a stream's lease (if ``owner`` holds it) and set when its head is due."""
    cursor.execute(
        """
        UPDATE flunq_subscription_streams
           SET lease_owner = CASE WHEN lease_owner = %s OR %s IS NULL THEN NULL ELSE lease_owner END,
               lease_until = CASE WHEN lease_owner = %s OR %s IS NULL THEN NULL ELSE lease_until END,
               next_attempt_at = now() + make_interval(secs => %s),
               failed_attempts = failed_attempts + %s
         WHERE id = %s
        """,
        [owner, owner, owner, owner, delay or 0.0, failed, stream_id],
    )


def compact(idle_seconds: float = 60.0, limit: int = 10_000) -> int:
    """Fold idle stream rows into their subscription's totals and delete them.

    A row is idle when nothing is pending, nobody holds it and it was last due ``idle_seconds``
    ago. The subscription row is locked first, as a scan does, so the two never deadlock; a scan
    that enqueues for a compacted stream simply creates its row again.
    """
    removed = 0
    candidates = (
        Subscription.objects.filter(streams__pending=0, streams__lease_owner__isnull=True)
        .values_list("id", flat=True)
        .distinct()
    )
    for key in list(candidates[:100]):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM flunq_subscriptions WHERE id = %s FOR NO KEY UPDATE SKIP LOCKED", [key]
            )
            if cursor.fetchone() is None:
                continue
            cursor.execute(
                """
                WITH gone AS (
                    DELETE FROM flunq_subscription_streams
                     WHERE id IN (SELECT id FROM flunq_subscription_streams
                                   WHERE subscription_id = %s AND pending = 0 AND lease_owner IS NULL
                                     AND next_attempt_at < now() - make_interval(secs => %s)
                                   ORDER BY stream LIMIT %s
                                     FOR UPDATE SKIP LOCKED)
                    RETURNING delivered, failed_attempts, dead_lettered
                )
                UPDATE flunq_subscriptions s
                   SET delivered_total = s.delivered_total + g.delivered,
                       failed_attempts_total = s.failed_attempts_total + g.failed,
                       dead_lettered_total = s.dead_lettered_total + g.dead
                  FROM (SELECT count(*) AS n, coalesce(sum(delivered), 0) AS delivered,
                               coalesce(sum(failed_attempts), 0) AS failed,
                               coalesce(sum(dead_lettered), 0) AS dead FROM gone) g
                 WHERE s.id = %s
                RETURNING g.n
                """,
                [key, idle_seconds, limit, key],
            )
            removed += cursor.fetchone()[0]
    return removed


def recount(cursor, stream_id: int) -> None:
    """Set a stream's pending counter from its deliveries (a leased stream turned out empty)."""
    cursor.execute(
        """
        UPDATE flunq_subscription_streams ss
           SET pending = (SELECT count(*) FROM flunq_deliveries d
                           WHERE d.subscription_id = ss.subscription_id AND d.stream = ss.stream)
         WHERE id = %s
        """,
        [stream_id],
    )


def due_in(now: datetime | None = None) -> float | None:
    """Seconds until the next webhook stream is due (None when nothing is pending)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT min(greatest(ss.next_attempt_at, coalesce(ss.lease_until, ss.next_attempt_at)))
              FROM flunq_subscription_streams ss JOIN flunq_subscriptions s ON s.id = ss.subscription_id
             WHERE ss.pending > 0 AND s.state = 'active' AND s.kind = 'webhook'
            """
        )
        moment = cursor.fetchone()[0]
    if moment is None:
        return None
    return max(0.0, (moment - (now or timezone.now())).total_seconds())
