"""Routes of the live feeds (included by ``flunq_events/urls.py``; websockets: ``live/routing.py``)."""

from django.urls import path
from django.views.generic import RedirectView

from live.sse import event_stream
from live.views import WsTicketView, live_page

urlpatterns = [
    path("api/v1/events/stream", event_stream, name="events-stream"),
    path("api/v1/ws-tickets", WsTicketView.as_view(), name="ws-tickets"),
    path("live/", live_page, name="live"),
    path("", RedirectView.as_view(url="/live/", permanent=False)),
]
