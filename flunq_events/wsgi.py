"""WSGI entry point (the service is served over ASGI; this exists for tools that want WSGI)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flunq_events.settings")
application = get_wsgi_application()
