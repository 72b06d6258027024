"""DRF permission: each view names the scope each HTTP method needs.

class EventsView(APIView):
    required_scopes = {"GET": "events:read", "POST": "events:write"}
"""

from __future__ import annotations

from rest_framework import exceptions, permissions

DEFAULT_SCOPES = {
    "GET": "events:read",
    "HEAD": "events:read",
    "OPTIONS": "events:read",
    "POST": "events:write",
    "PUT": "admin",
    "PATCH": "admin",
    "DELETE": "admin",
}


class HasScope(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        principal = request.user
        if principal is None:
            raise exceptions.NotAuthenticated("an API token is required: 'Authorization: Bearer <token>'")
        scopes = getattr(view, "required_scopes", None) or DEFAULT_SCOPES
        if request.method in scopes:
            scope = scopes[request.method]
        elif request.method in ("HEAD", "OPTIONS"):
            # HEAD is a GET without its body; OPTIONS describes the view (DRF's metadata): a reader's.
            scope = scopes.get("GET", "events:read")
        else:
            scope = "admin"
        if scope is None or principal.has_scope(scope):
            return True
        raise exceptions.PermissionDenied(f"this token lacks the scope {scope!r}")
