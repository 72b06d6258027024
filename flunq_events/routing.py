"""Websocket routes (Channels): each app's, then a refusal (4404) for every other path."""

from django.urls import re_path

from live.consumers import NoSuchFeed
from live.routing import websocket_urlpatterns as live_websockets

websocket_urlpatterns: list = [*live_websockets, re_path(r"", NoSuchFeed.as_asgi())]
