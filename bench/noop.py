"""A DRF view that does nothing, for measuring the framework's own cost on the real server.

Mounted at ``POST /bench/noop`` only when ``BENCH_NOOP_VIEW`` is on. It has the same
authentication, permission, parser and renderer classes as the API's views and the scope of an
append, so "our append / this view" is the share of the HTTP path the append itself costs.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView


@extend_schema(exclude=True)
class NoOpView(APIView):
    required_scopes = {"POST": "events:write"}

    def post(self, request):
        return Response({"ok": True}, status=201)
