"""DRF authentication: ``Authorization: Bearer <token>``."""

from __future__ import annotations

from rest_framework import authentication, exceptions

from access.tokens import authenticate_token, bearer_token


class BearerTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION")
        token = bearer_token(header)
        if header and token is None:
            raise exceptions.AuthenticationFailed("expected 'Authorization: Bearer <token>'")
        principal = authenticate_token(token)
        if principal is None:
            if token:
                raise exceptions.AuthenticationFailed("unknown or revoked token")
            return None
        return principal, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="flunq"'
