"""ASGI entry point: HTTP (Django, behind the body limit) and websockets (Channels) on one port."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flunq_events.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402 - needs Django set up
from django.conf import settings  # noqa: E402

from flunq_events.limits import BodyLimitMiddleware  # noqa: E402
from flunq_events.origin import BrowserOriginValidator  # noqa: E402
from flunq_events.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": BodyLimitMiddleware(django_asgi_app, settings.MAX_BODY_BYTES),
        "websocket": BrowserOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
