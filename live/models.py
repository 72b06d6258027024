"""Single-use websocket tickets: what ``POST /api/v1/ws-tickets`` hands out.

A browser cannot set ``Authorization`` on a websocket (or an ``EventSource``), and a long-lived
token in a URL ends up in logs; a ticket is short-lived, used once, and only its sha256 is stored.
"""

from django.contrib.postgres.fields import ArrayField
from django.db import models


class WsTicket(models.Model):
    ticket_hash = models.CharField(max_length=64, unique=True)
    principal = models.CharField(max_length=200)
    scopes = ArrayField(models.CharField(max_length=32), default=list)
    tenant = models.CharField(max_length=200, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "flunq_ws_tickets"

    def __str__(self) -> str:
        return f"ticket for {self.principal} until {self.expires_at.isoformat()}"
