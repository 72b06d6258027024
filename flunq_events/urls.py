"""URL map of the service. API under /api/v1/, OpenAPI at /api/schema/, docs at /api/docs/."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from events.views import EventDetailView, EventsView, StreamEventsView
from flunq_events.health import healthz, readyz
from flunq_events.metrics import metrics_view
from snapshots.views import LatestSnapshotView, SnapshotsView, StreamStateView
from streams.views import StreamDetailView, StreamsView

api = [
    path("api/v1/events", EventsView.as_view(), name="events"),
    path("api/v1/events/<str:event_id>", EventDetailView.as_view(), name="event-detail"),
    path("api/v1/streams", StreamsView.as_view(), name="streams"),
    path("api/v1/streams/<str:stream>", StreamDetailView.as_view(), name="stream-detail"),
    path("api/v1/streams/<str:stream>/events", StreamEventsView.as_view(), name="stream-events"),
    path("api/v1/streams/<str:stream>/snapshots", SnapshotsView.as_view(), name="stream-snapshots"),
    path(
        "api/v1/streams/<str:stream>/snapshots/latest",
        LatestSnapshotView.as_view(),
        name="stream-snapshot-latest",
    ),
    path("api/v1/streams/<str:stream>/state", StreamStateView.as_view(), name="stream-state"),
]

urlpatterns = [
    # Before *api: /api/v1/events/stream must not be taken for an event id.
    path("", include("live.urls")),
    *api,
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("healthz", healthz),
    path("metrics", metrics_view, name="metrics"),
    path("readyz", readyz),
    path("admin/", admin.site.urls),
    path("", include("schemas.urls")),
    path("", include("subscriptions.urls")),
]

if settings.BENCH_NOOP_VIEW:
    from bench.noop import NoOpView

    urlpatterns.append(path("bench/noop", NoOpView.as_view(), name="bench-noop"))

handler404 = "flunq_events.api.handler404"
handler500 = "flunq_events.api.handler500"
