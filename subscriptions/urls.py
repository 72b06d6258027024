"""Routes of the subscriptions API (included under /api/v1/ by ``flunq_events/urls.py``)."""

from django.urls import path

from subscriptions import views

SUB = "api/v1/subscriptions/<str:subscription_id>"

urlpatterns = [
    path("api/v1/subscriptions", views.SubscriptionsView.as_view(), name="subscriptions"),
    path(SUB, views.SubscriptionDetailView.as_view(), name="subscription-detail"),
    path(f"{SUB}/fetch", views.FetchView.as_view(), name="subscription-fetch"),
    path(f"{SUB}/ack", views.AckView.as_view(), name="subscription-ack"),
    path(f"{SUB}/nack", views.NackView.as_view(), name="subscription-nack"),
    path(
        f"{SUB}/dead-letters", views.SubscriptionDeadLettersView.as_view(), name="subscription-dead-letters"
    ),
    # Before <dead_letter_id>: "redrive" is not an id.
    path(f"{SUB}/dead-letters/redrive", views.DeadLettersRedriveView.as_view(), name="dead-letters-redrive"),
    path(
        f"{SUB}/dead-letters/<str:dead_letter_id>", views.DeadLetterDetailView.as_view(), name="dead-letter"
    ),
    path(
        f"{SUB}/dead-letters/<str:dead_letter_id>/redrive",
        views.DeadLetterRedriveView.as_view(),
        name="dead-letter-redrive",
    ),
    path(f"{SUB}/replay", views.ReplayCreateView.as_view(), name="subscription-replay"),
    path(f"{SUB}/replays", views.ReplayListView.as_view(), name="subscription-replays"),
    path(f"{SUB}/replays/<str:job_id>", views.ReplayDetailView.as_view(), name="replay-detail"),
    path(f"{SUB}/replays/<str:job_id>/cancel", views.ReplayCancelView.as_view(), name="replay-cancel"),
    path("api/v1/dead-letters", views.DeadLettersView.as_view(), name="dead-letters"),
]
