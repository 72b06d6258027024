"""Websocket routes (Channels)."""

websocket_urlpatterns: list = []

from live.routing import websocket_urlpatterns as live_websockets  # noqa: E402

websocket_urlpatterns += live_websockets
