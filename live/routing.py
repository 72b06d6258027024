"""Websocket routes of the live feeds (included by ``flunq_events/routing.py``)."""

from django.urls import path, re_path

from live.consumers import EventsConsumer

websocket_urlpatterns = [
    path("ws/events", EventsConsumer.as_asgi()),
    # Any characters, "/" and newlines too: a name no stream can have reaches the name check (4400).
    re_path(r"^ws/streams/(?P<stream>[\s\S]+)\Z", EventsConsumer.as_asgi()),
]
