"""Who opens a live feed: a bearer token (header) or a single-use ticket, and the read scope.

Used by the websocket handshake and the SSE view. A ticket is checked whenever one is given; with
AUTH_REQUIRED=false a request without one is the local developer (everything allowed).
"""

from __future__ import annotations

from access.principal import Principal
from access.tokens import authenticate_token, bearer_token
from flunq_events.errors import ServiceError
from live import tickets
from live.query import Forbidden

READ_SCOPE = "events:read"


class Unauthenticated(ServiceError):
    code = "unauthenticated"
    http_status = 401


def authenticate(authorization: str | None, ticket: str | None) -> Principal:
    """The principal of a feed request, or ``Unauthenticated`` / ``Forbidden`` naming why not."""
    if ticket is not None:
        principal = tickets.redeem(ticket)
        if principal is None:
            raise Unauthenticated(
                "unknown, used or expired ticket; get a new one from POST /api/v1/ws-tickets"
            )
    else:
        token = bearer_token(authorization)
        if authorization and token is None:
            raise Unauthenticated("expected 'Authorization: Bearer <token>'")
        principal = authenticate_token(token)
        if principal is None:
            if token:
                raise Unauthenticated("unknown or revoked token")
            raise Unauthenticated(
                "an API token is required: 'Authorization: Bearer <token>', "
                "or ?ticket= from POST /api/v1/ws-tickets"
            )
    if not principal.has_scope(READ_SCOPE):
        raise Forbidden(f"this token lacks the scope {READ_SCOPE!r}")
    return principal
