"""Tenant isolation: a token bound to a tenant sees and writes only that tenant's events.

Every API (REST, websockets/SSE, gRPC, subscriptions, snapshots) calls these functions with the
caller's ``Principal``. A principal without a tenant (an operator's token, or ``AUTH_REQUIRED``
off) is not restricted, and every function lets it through unchanged.

The rule, for a principal bound to tenant T:

- **Append**: pass ``tenant=tenant_of(principal)`` to ``events.services.append``. An event
  without ``tenantid`` gets T; an event naming another tenant is refused with 403. The append
  function in the database refuses, under the stream's lock, a stream that belongs to another
  tenant (403), and a ``(source, id)`` held by another tenant (409 naming nothing of that event).
- **A stream's tenant** (``Stream.tenant``) is the ``tenantid`` of its first event, or the tenant
  of the tenant-bound caller that created it empty. Stream names are global, so a refused append
  tells T that the name is taken; nothing of the stream's content.
- **Reads**: the global log is filtered to ``tenantid = T`` (asking for another tenant is 403);
  an event by id, a stream's events and a stream's detail answer 404 when they are not T's; a
  stream list holds only T's streams.

    from access import tenancy

    filter_ = tenancy.scope_filter(request.user, filter_)       # global log, live feeds
    services.append(events, tenant=tenancy.tenant_of(request.user))
    tenancy.check_stream(request.user, name)                    # before reading a stream
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from access.principal import Principal
from events import selectors
from events.cloudevents import STREAM_NAME
from events.selectors import EventFilter
from flunq_events.errors import NotFound, TenantForbidden
from streams.models import Stream


def tenant_of(principal: Principal | None) -> str | None:
    """The tenant ``principal`` is bound to; None when it may see every tenant."""
    return getattr(principal, "tenant", None)


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
    """Whether the principal may see stream ``name``."""
    tenant = tenant_of(principal)
    if tenant is None:
        return True
    # A name no stream can have (a NUL, which PostgreSQL refuses, ...) is nobody's.
    return bool(STREAM_NAME.match(name)) and Stream.objects.filter(name=name, tenant=tenant).exists()


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
    return streams if tenant is None else streams.filter(tenant=tenant)


def get_event(principal: Principal | None, event_id: str, source: str | None = None) -> dict[str, Any]:
    """One event by id among the principal's events; 404 for another tenant's event (another
    tenant's reuse of the id neither shows nor makes the id ambiguous)."""
    return selectors.get_event(event_id, source, tenantid=tenant_of(principal))
