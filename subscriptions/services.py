"""Every change to subscriptions, their dead letters and their replays goes through here.

Views and the admin validate input (``subscriptions.inputs``) and call these functions; the worker
and pull consumers use ``subscriptions.queue`` / ``subscriptions.pull``.

- ``create_subscription`` resolves the start into the first checkpoint and, for webhooks, checks
  the URL (``ssrf.check_url``) and issues the signing secret (returned once).
- ``update_subscription`` changes name, URL, filter, retry policy, lease or state; re-activating a
  disabled subscription clears the failure streak, and any state but ``disabled`` clears the
  reason it was disabled.
- ``set_checkpoint`` moves the live position (a rewind re-enqueues from there; events already
  pending stay pending).
- ``redrive`` / ``discard`` act on dead letters, one or many by filter.
- ``start_replay`` / ``cancel_replay``: a tracked job that re-enqueues a slice of the log.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from access.principal import Principal
from events import horizon, selectors
from flunq_events.db import retry_on_deadlock
from flunq_events.errors import Conflict, InvalidRequest, NotFound
from flunq_events.numbers import is_digits
from subscriptions import ssrf, webhooks
from subscriptions.models import DeadLetter, ReplayJob, Subscription

NOTIFY = "SELECT pg_notify('flunq_subscriptions', '')"


def _notify(cursor) -> None:
    # Wakes the delivery workers (they also poll, so a lost notification only delays).
    cursor.execute(NOTIFY)


def visible(principal: Principal | None):
    """Subscriptions ``principal`` may see: all, or its tenant's only."""
    queryset = Subscription.objects.all()
    if principal is not None and principal.tenant is not None:
        queryset = queryset.filter(tenantid=principal.tenant)
    return queryset


def get_subscription(principal: Principal | None, subscription_id: str) -> Subscription:
    try:
        key = uuid.UUID(str(subscription_id))
    except ValueError:
        raise NotFound(f"no subscription with id {str(subscription_id)[:80]!r}") from None
    subscription = visible(principal).filter(id=key).first()
    if subscription is None:
        raise NotFound(f"no subscription with id {subscription_id!r}", subscription=str(subscription_id))
    return subscription


def _force_tenant(principal: Principal | None, filter_: dict[str, Any]) -> dict[str, Any]:
    tenant = principal.tenant if principal is not None else None
    if tenant is None:
        return filter_
    if filter_.get("tenantid") not in (None, tenant):
        raise InvalidRequest(
            f"this token is bound to tenant {tenant!r}; filter/tenantid must be that tenant",
            field="filter/tenantid",
        )
    return {**filter_, "tenantid": tenant}


def resolve_start(start: str | int | datetime) -> int:
    """The first checkpoint: events after it are delivered (``start`` itself is inclusive). At most
    the end of the log, as ``set_checkpoint`` (``horizon.log_end`` says why)."""
    if start == "beginning":
        return 0
    if start == "now":
        return horizon.current()
    if isinstance(start, int):
        return min(max(start - 1, 0), horizon.log_end())
    return selectors.position_at(start)  # a time after the last event: the horizon


@contextmanager
def _one_name_each(name: str) -> Iterator[None]:
    """A transaction whose unique index on names decides between requests taking the same name at
    once (``_unique_name`` answers the common case before anything is written)."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError as exc:
        if (
            getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)
            != "flunq_subscriptions_name"
        ):
            raise
        raise Conflict(f"a subscription named {name!r} exists already", field="name") from exc


def _unique_name(name: str, tenantid: str | None, exclude=None) -> None:
    clash = Subscription.objects.filter(name=name, tenantid=tenantid)
    if exclude is not None:
        clash = clash.exclude(id=exclude)
    if clash.exists():
        raise Conflict(f"a subscription named {name!r} exists already", field="name")


def create_subscription(
    *,
    principal: Principal | None,
    name: str,
    kind: str,
    url: str | None = None,
    filter: dict[str, Any] | None = None,
    start: str | int | datetime = "now",
    max_attempts: int | None = None,
    backoff: list[float] | None = None,
    lease_seconds: float | None = None,
    state: str = Subscription.ACTIVE,
) -> Subscription:
    """Create a subscription; for a webhook, ``subscription.secret`` is the one chance to read it."""
    filter_ = _force_tenant(principal, filter or {"types": []})
    if kind == Subscription.WEBHOOK:
        if url is None:
            raise InvalidRequest("url is required for a webhook subscription", field="url")
        ssrf.check_url(url)
    elif url is not None:
        raise InvalidRequest("url is only for webhook subscriptions", field="url")
    _unique_name(name, filter_.get("tenantid"))
    subscription = Subscription(
        name=name,
        kind=kind,
        url=url,
        secret=webhooks.new_secret() if kind == Subscription.WEBHOOK else "",
        start=start.isoformat() if isinstance(start, datetime) else str(start),
        checkpoint=resolve_start(start),
        max_attempts=max_attempts or settings.SUBSCRIPTION_MAX_ATTEMPTS,
        backoff=backoff or list(settings.SUBSCRIPTION_RETRY_SCHEDULE),
        lease_seconds=lease_seconds or settings.PULL_LEASE_SECONDS,
        state=state,
        **{key: value for key, value in filter_.items()},
    )
    with _one_name_each(name):
        subscription.save(force_insert=True)
        with connection.cursor() as cursor:
            _notify(cursor)
    subscription.refresh_from_db()
    return subscription


def update_subscription(
    subscription: Subscription, *, principal: Principal | None, **changes: Any
) -> Subscription:
    """Apply validated ``changes`` (name, url, filter, max_attempts, backoff, lease_seconds, state)."""
    if "url" in changes:
        if subscription.kind != Subscription.WEBHOOK:
            raise InvalidRequest("url is only for webhook subscriptions", field="url")
        ssrf.check_url(changes["url"])
    if "filter" in changes:
        for key, value in _force_tenant(principal, changes.pop("filter")).items():
            changes[key] = value
    if "name" in changes or "tenantid" in changes:
        _unique_name(
            changes.get("name", subscription.name),
            changes.get("tenantid", subscription.tenantid),
            exclude=subscription.id,
        )
    state = changes.get("state")
    if state == Subscription.ACTIVE and subscription.state != Subscription.ACTIVE:
        changes["failing_since"] = None
    if state == Subscription.DISABLED and subscription.state != Subscription.DISABLED:
        changes["disabled_reason"] = "disabled by request"
    elif state is not None and state != Subscription.DISABLED:
        changes["disabled_reason"] = ""  # it says why the subscription is disabled, and it no longer is
    with _one_name_each(changes.get("name", subscription.name)):
        Subscription.objects.filter(id=subscription.id).update(updated_at=timezone.now(), **changes)
        with connection.cursor() as cursor:
            _notify(cursor)
    subscription.refresh_from_db()
    return subscription


@retry_on_deadlock
def delete_subscription(subscription: Subscription) -> None:
    # Set-based deletes: the ORM's cascade would load every pending delivery into memory.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM flunq_subscriptions WHERE id = %s FOR UPDATE", [subscription.id])
        for table in (
            "flunq_deliveries",
            "flunq_dead_letters",
            "flunq_subscription_streams",
            "flunq_replay_jobs",
        ):
            cursor.execute(f"DELETE FROM {table} WHERE subscription_id = %s", [subscription.id])
        cursor.execute("DELETE FROM flunq_subscriptions WHERE id = %s", [subscription.id])


def set_checkpoint(subscription: Subscription, position: int) -> Subscription:
    """Move the live checkpoint (rewind or skip ahead); at most to the end of the log."""
    position = min(position, horizon.log_end())
    with transaction.atomic():
        Subscription.objects.filter(id=subscription.id).update(checkpoint=position, updated_at=timezone.now())
        with connection.cursor() as cursor:
            _notify(cursor)
    subscription.refresh_from_db()
    return subscription


# --- dead letters ----------------------------------------------------------------------------------


def dead_letter_query(
    *,
    subscriptions=None,
    stream: str | None = None,
    type: str | None = None,
    reason: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    ids: list[int] | None = None,
):
    queryset = DeadLetter.objects.all()
    if subscriptions is not None:
        queryset = queryset.filter(subscription__in=subscriptions)
    if stream is not None:
        queryset = queryset.filter(stream=stream)
    if type is not None:
        queryset = queryset.filter(Q(type__startswith=type[:-1]) if type.endswith("*") else Q(type=type))
    if reason is not None:
        queryset = queryset.filter(reason=reason)
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    if until is not None:
        queryset = queryset.filter(created_at__lt=until)
    if ids is not None:
        queryset = queryset.filter(id__in=ids)
    return queryset


def get_dead_letter(subscription: Subscription, dead_letter_id: str) -> DeadLetter:
    if not is_digits(str(dead_letter_id), 18):
        raise NotFound(f"no dead letter with id {str(dead_letter_id)[:40]!r}")
    row = DeadLetter.objects.filter(subscription=subscription, id=int(dead_letter_id)).first()
    if row is None:
        raise NotFound(f"no dead letter {dead_letter_id} in subscription {subscription.id}")
    return row


# A dead letter goes back as what it was: a replay's copy keeps its job (and so its webhook-id). The
# live queue holds each event once, so a live dead letter whose event is pending again (after a
# rewind) is not queued a second time: it stays, and only the dead letters queued are deleted.
_REDRIVE = """
WITH locked AS (
    SELECT id, subscription_id, stream, "position", replay_job_id FROM flunq_dead_letters
     WHERE id = ANY(%s) ORDER BY id FOR UPDATE
), picked AS (  -- one of several dead letters of the same event and job
    SELECT DISTINCT ON (subscription_id, "position", replay_job_id) * FROM locked
     ORDER BY subscription_id, "position", replay_job_id, id
), added AS (
    INSERT INTO flunq_deliveries (subscription_id, stream, "position", replay_job_id)
    SELECT subscription_id, stream, "position", replay_job_id FROM picked ORDER BY "position"
    ON CONFLICT DO NOTHING
    RETURNING subscription_id, stream, "position", replay_job_id
), requeued AS (
    DELETE FROM flunq_dead_letters dl USING picked p, added a
     WHERE dl.id = p.id AND a.subscription_id = p.subscription_id AND a."position" = p."position"
       AND a.replay_job_id IS NOT DISTINCT FROM p.replay_job_id
), counted AS (
    INSERT INTO flunq_subscription_streams AS ss (subscription_id, stream, pending)
    SELECT subscription_id, stream, count(*) FROM added GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (subscription_id, stream) DO UPDATE SET pending = ss.pending + excluded.pending
), jobs AS (  -- a running replay counts its redriven events as pending again; one that has ended
    -- (completed, canceled) keeps its counts: its redriven copy keeps its webhook-id, not its progress
    UPDATE flunq_replay_jobs j SET enqueued = j.enqueued + c.n
      FROM (SELECT replay_job_id, count(*) AS n FROM added WHERE replay_job_id IS NOT NULL GROUP BY 1) c
     WHERE j.id = c.replay_job_id AND j.state = 'running'
)
SELECT count(*) FROM added
"""


def redrive(dead_letters) -> int:
    """Put dead letters back in their subscription's queue (ahead of newer events of their stream).

    Returns how many were queued again; those whose event is pending in the live queue already
    stay dead letters.
    """
    ids = list(dead_letters.order_by("id").values_list("id", flat=True))
    if not ids:
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_REDRIVE, [ids])
        count = cursor.fetchone()[0]
        _notify(cursor)
    return count


def discard(dead_letters) -> int:
    """Delete dead letters for good (the events stay in the log)."""
    count, _ = DeadLetter.objects.filter(id__in=list(dead_letters.values_list("id", flat=True))).delete()
    return count


# --- replay ----------------------------------------------------------------------------------------


def start_replay(
    subscription: Subscription,
    *,
    start: int | datetime,
    until: int | datetime | None = None,
    types: list[str] | None = None,
    stream: str | None = None,
    created_by: str = "",
    request: dict | None = None,
) -> ReplayJob:
    """Re-enqueue events in [start, until) matching the subscription's filter (and ``types``/``stream``).

    The live checkpoint is untouched; the slice ends at ``until`` or at the horizon right now.
    """
    if (
        until is not None and type(until) is type(start) and until <= start  # type: ignore[operator]
    ):
        raise InvalidRequest("until must be after from", field="until")
    upper = horizon.current()
    start_after = max(start - 1, 0) if isinstance(start, int) else selectors.position_at(start)
    if until is None:
        end = upper
    else:
        end = min(until - 1 if isinstance(until, int) else selectors.position_at(until), upper)
    end = max(end, start_after)
    with transaction.atomic():
        job = ReplayJob.objects.create(
            subscription=subscription,
            request=request or {},
            types=types or [],
            stream=stream,
            start_after=start_after,
            end_position=end,
            cursor=start_after,
            created_by=created_by,
        )
        with connection.cursor() as cursor:
            _notify(cursor)
    return job


def get_replay(subscription: Subscription, job_id: str) -> ReplayJob:
    if not is_digits(str(job_id), 18):
        raise NotFound(f"no replay job with id {str(job_id)[:40]!r}")
    job = ReplayJob.objects.filter(subscription=subscription, id=int(job_id)).first()
    if job is None:
        raise NotFound(f"no replay job {job_id} in subscription {subscription.id}")
    return job


def cancel_replay(job: ReplayJob) -> ReplayJob:
    """Stop a running replay: its undelivered events leave the queue (delivered ones stay delivered)."""
    from subscriptions import queue

    with transaction.atomic(), connection.cursor() as cursor:
        # Streams first, then the job row: the order every other writer uses.
        cursor.execute("SELECT DISTINCT stream FROM flunq_deliveries WHERE replay_job_id = %s", [job.id])
        queue.lock_streams_by_name(cursor, job.subscription_id, [row[0] for row in cursor.fetchall()])
        cursor.execute(
            "UPDATE flunq_replay_jobs SET state = 'canceled', finished_at = now() "
            "WHERE id = %s AND state = 'running'",
            [job.id],
        )
        if cursor.rowcount == 0:
            job.refresh_from_db()
            raise Conflict(f"replay job {job.id} is {job.state}, not running", state=job.state)
        cursor.execute(
            """
            WITH gone AS (DELETE FROM flunq_deliveries WHERE replay_job_id = %s RETURNING subscription_id, stream)
            UPDATE flunq_subscription_streams ss SET pending = ss.pending - c.n
              FROM (SELECT subscription_id, stream, count(*) AS n FROM gone GROUP BY 1, 2) c
             WHERE ss.subscription_id = c.subscription_id AND ss.stream = c.stream
            """,
            [job.id],
        )
    job.refresh_from_db()
    return job
