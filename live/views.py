"""HTTP side of the live feeds: websocket tickets and the live page."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from flunq_events.openapi import ErrorSerializer
from flunq_events.params import reject_unknown
from live import tickets

TicketSerializer = inline_serializer(
    "WsTicket",
    {
        "ticket": serializers.CharField(),
        "expires_at": serializers.DateTimeField(),
        "expires_in": serializers.IntegerField(),
    },
)


@extend_schema(tags=["live"])
class WsTicketView(APIView):
    """A single-use ticket for ``/ws/events?ticket=...`` or ``/api/v1/events/stream?ticket=...``."""

    required_scopes = {"POST": "events:read"}

    @extend_schema(
        summary="Get a short-lived, single-use ticket for a websocket or SSE feed",
        request=None,
        responses={201: TicketSerializer, 401: ErrorSerializer, 403: ErrorSerializer},
    )
    def post(self, request):
        reject_unknown(request.query_params, [])
        ticket, expires_at = tickets.issue(request.user)
        return Response(
            {"ticket": ticket, "expires_at": expires_at, "expires_in": settings.LIVE_TICKET_SECONDS},
            status=201,
        )


def live_page(request: HttpRequest) -> HttpResponse:
    """The live page: watch the feed in a browser (templates/live.html)."""
    return render(request, "live.html", {"auth_required": settings.AUTH_REQUIRED})
