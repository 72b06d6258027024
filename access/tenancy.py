"""Tenant isolation: a token bound to a tenant sees and writes only that tenant's events.

Every API (REST, websockets/SSE, gRPC, subscriptions, snapshots) calls these functions with the
caller's ``Principal``. A principal without a tenant (an operator's token, or ``AUTH_REQUIRED``
off) is not restricted, and every function lets it through unchanged.

The rule, for a principal bound to tenant T:

- **Append** (``check_append``): an event without ``tenantid`` gets T; an event naming another
  tenant is refused with 403. An append into a stream that belongs to another tenant is refused
  with 403 as well. ``(source, id)`` is unique across tenants: reusing a pair another tenant
  holds is a 409 that names nothing of that event.
- **A stream's tenant** is the ``tenantid`` of its first stored event (its lowest version), read
  through the ``(stream, version)`` index. A stream without events belongs to nobody yet: T sees it
  once it holds T's first event. Stream names are global, so a refused append tells T that the
  name is taken; nothing of the stream's content.
- **Reads**: the global log is filtered to ``tenantid = T`` (asking for another tenant is 403);
  an event by id, a stream's events and a stream's detail answer 404 when they are not T's; a
  stream list holds only T's streams.

    from access import tenancy

    filter_ = tenancy.scope_filter(request.user, filter_)       # global log, live feeds
    tenancy.check_append(request.user, events, stream=stream)   # before services.append
    tenancy.check_stream(request.user, name)                    # before reading a stream
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection
from django.db.models import OuterRef, QuerySet, Subquery

from access.principal import Principal
from events import selectors
from events.cloudevents import NewEvent, derive_stream
from events.models import Event
from events.selectors import COLUMNS, EventFilter, to_cloudevent
from flunq_events.errors import Conflict, NotFound, ServiceError


class TenantForbidden(ServiceError):
    code = "forbidden_tenant"
    http_status = 403


def tenant_of(principal: Principal | None) -> str | None:
    """The tenant ``principal`` is bound to; None when it may see every tenant."""
    return getattr(principal, "tenant", None)


def stamp(principal: Principal | None, events: Sequence[NewEvent]) -> None:
    """Give each event the principal's tenant, or refuse one that names another tenant."""
    tenant = tenant_of(principal)
    if tenant is None:
        return
    for index, event in enumerate(events):
        if event.tenantid is None:
            event.tenantid = tenant
        elif event.tenantid != tenant:
            where = f"/{index}/tenantid" if len(events) > 1 else "/tenantid"
            raise TenantForbidden(
                f"{where}: this token writes events of tenant {tenant!r} only, got {event.tenantid!r}",
                attribute=where,
                expected=tenant,
                actual=event.tenantid,
            )


# The tenant of each stream is its first event's: one index probe per stream, however long it is.
_FIRST_EVENTS = (
    "SELECT n.name, e.tenantid FROM unnest(%s::text[]) AS n(name) CROSS JOIN LATERAL "
    '(SELECT tenantid FROM flunq_events WHERE stream = n.name ORDER BY "version" LIMIT 1) AS e'
)
# (source, id) is unique across the whole log. Without this check, reusing another tenant's pair
# would answer the append function's 409, which names that event's stream.
_TAKEN_IDS = (
    "SELECT e.source, e.id FROM flunq_events AS e "
    "JOIN unnest(%s::text[], %s::text[]) AS k(source, id) ON e.source = k.source AND e.id = k.id "
    "WHERE e.tenantid IS DISTINCT FROM %s LIMIT 1"
)


def stream_tenants(names: Iterable[str]) -> dict[str, str | None]:
    """The tenant of each named stream that holds events (streams without events are absent)."""
    names = sorted(set(names))
    if not names:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_FIRST_EVENTS, [names])
        return dict(cursor.fetchall())


def check_append(
    principal: Principal | None, events: Sequence[NewEvent], *, stream: str | None = None
) -> None:
    """Stamp the events with the principal's tenant and refuse writes into other tenants' streams."""
    tenant = tenant_of(principal)
    if tenant is None:
        return
    stamp(principal, events)
    names = sorted({stream} if stream is not None else {derive_stream(event) for event in events})
    # One round trip for both checks: streams first, then at most one taken (source, id).
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 'stream', * FROM ({_FIRST_EVENTS}) AS s UNION ALL SELECT 'id', * FROM ({_TAKEN_IDS}) AS t",
            [names, [event.source for event in events], [event.id for event in events], tenant],
        )
        rows = cursor.fetchall()
    for kind, first, second in rows:
        if kind == "stream" and second != tenant:
            raise TenantForbidden(
                f"stream {first!r} belongs to another tenant; this token writes for tenant {tenant!r}",
                stream=first,
            )
    for kind, source, event_id in rows:
        if kind == "id":
            raise Conflict(
                f"source {source!r} and id {event_id!r} are taken by an event this token cannot see; "
                "use a source of your own",
                source=source,
                id=event_id,
            )


def check_stream_writable(principal: Principal | None, name: str) -> None:
    """Refuse changes (create/recreate) to a stream that holds another tenant's events."""
    check_append(principal, [], stream=name)


def scope_filter(principal: Principal | None, filter_: EventFilter) -> EventFilter:
    """``filter_`` narrowed to the principal's tenant (403 when it asks for another tenant)."""
    tenant = tenant_of(principal)
    if tenant is None:
        return filter_
    if filter_.tenantid is not None and filter_.tenantid != tenant:
        raise TenantForbidden(
            f"this token reads events of tenant {tenant!r} only, not {filter_.tenantid!r}",
            parameter="tenantid",
            expected=tenant,
            actual=filter_.tenantid,
        )
    filter_.tenantid = tenant
    return filter_


def sees_stream(principal: Principal | None, name: str) -> bool:
    """Whether the principal may see stream ``name`` (one that holds events of its tenant)."""
    tenant = tenant_of(principal)
    if tenant is None:
        return True
    owners = stream_tenants([name])
    return name in owners and owners[name] == tenant


def check_stream(principal: Principal | None, name: str) -> None:
    """404 (as for a stream that does not exist) unless the principal may see stream ``name``."""
    if not sees_stream(principal, name):
        raise NotFound(f"no stream named {name!r}", stream=name)


def visible_events(principal: Principal | None, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop events of other tenants (a stream of T holds only T's events unless an operator wrote others)."""
    tenant = tenant_of(principal)
    if tenant is None:
        return events
    return [event for event in events if event.get("tenantid") == tenant]


def visible_streams(principal: Principal | None, streams: QuerySet) -> QuerySet:
    """A ``Stream`` queryset narrowed to the principal's streams."""
    tenant = tenant_of(principal)
    if tenant is None:
        return streams
    first = Event.objects.filter(stream=OuterRef("name")).order_by("version").values("tenantid")[:1]
    return streams.annotate(owner_tenant=Subquery(first)).filter(owner_tenant=tenant)


def get_event(principal: Principal | None, event_id: str, source: str | None = None) -> dict[str, Any]:
    """One event by id among the principal's events; 404 for another tenant's event.

    Like ``events.selectors.get_event``, with the tenant in the query, so that another tenant's
    reuse of the same id neither shows nor makes the id ambiguous.
    """
    tenant = tenant_of(principal)
    if tenant is None:
        return selectors.get_event(event_id, source)
    sql = f"SELECT {COLUMNS} FROM flunq_events WHERE id = %s AND tenantid = %s"
    params: list[Any] = [event_id, tenant]
    if source is not None:
        sql += " AND source = %s"
        params.append(source)
    with connection.cursor() as cursor:
        cursor.execute(sql + ' ORDER BY "position" LIMIT 10', params)
        rows = cursor.fetchall()
    if not rows:
        raise NotFound(f"no event with id {event_id!r}" + (f" from source {source!r}" if source else ""))
    if len(rows) > 1:
        raise Conflict(
            f"{len(rows)} sources used the id {event_id!r}; add ?source= to choose one",
            sources=[row[4] for row in rows],
        )
    return to_cloudevent(rows[0])
