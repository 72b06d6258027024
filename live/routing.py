"""Websocket routes of the live feeds (included by ``flunq_events/routing.py``)."""

from django.urls import path

from live.consumers import EventsConsumer

websocket_urlpatterns = [
    path("ws/events", EventsConsumer.as_asgi()),
    path("ws/streams/<str:stream>", EventsConsumer.as_asgi()),
]
