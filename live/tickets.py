"""Issue and redeem single-use websocket tickets (see ``live.models.WsTicket``).

``issue`` stores the sha256 of a random ticket with the caller's name, scopes and tenant;
``redeem`` deletes the row in the same statement that reads it, so a ticket works once even when
two handshakes race with it, and an expired one never works.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from access.models import hash_token
from access.principal import Principal
from live.models import WsTicket

TICKET_PREFIX = "flqt_"


def issue(principal: Principal) -> tuple[str, datetime]:
    """A new ticket for ``principal`` and the moment it expires."""
    now = timezone.now()
    # Expired tickets are never redeemable; removing them here keeps the table at the size of the
    # tickets issued in the last LIVE_TICKET_SECONDS.
    WsTicket.objects.filter(expires_at__lt=now).delete()
    ticket = TICKET_PREFIX + secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=settings.LIVE_TICKET_SECONDS)
    WsTicket.objects.create(
        ticket_hash=hash_token(ticket),
        principal=principal.name,
        scopes=sorted(principal.scopes),
        tenant=principal.tenant,
        expires_at=expires_at,
    )
    return ticket, expires_at


def redeem(ticket: str) -> Principal | None:
    """The principal a ticket was issued to; None when it is unknown, used or expired."""
    if not ticket.startswith(TICKET_PREFIX) or len(ticket) > 100:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {WsTicket._meta.db_table} WHERE ticket_hash = %s "
            "RETURNING principal, scopes, tenant, expires_at > now()",
            [hash_token(ticket)],
        )
        row = cursor.fetchone()
    if row is None or not row[3]:
        return None
    name, scopes, tenant, _ = row
    return Principal(name=name, scopes=frozenset(scopes), tenant=tenant)
