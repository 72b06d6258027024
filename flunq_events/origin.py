"""Websocket Origin check: browsers' pages from other sites are refused, service clients are not.

A browser always sends ``Origin`` on a websocket handshake, so checking it against
``ALLOWED_HOSTS`` stops another site's page from using a visitor's session (cross-site websocket
hijacking). Service clients (the flunq worker, ``websocat``) send no Origin and authenticate with a
token; Channels' ``AllowedHostsOriginValidator`` would refuse them, so a missing Origin is let
through here and left to the token check.
"""

from __future__ import annotations

from channels.security.websocket import OriginValidator
from django.conf import settings


class BrowserOriginValidator(OriginValidator):
    def __init__(self, application) -> None:
        allowed = settings.ALLOWED_HOSTS
        if settings.DEBUG and not allowed:
            allowed = ["localhost", "127.0.0.1", "[::1]"]
        super().__init__(application, allowed)

    def valid_origin(self, parsed_origin) -> bool:
        if parsed_origin is None:
            return True
        return super().valid_origin(parsed_origin)
