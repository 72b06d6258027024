from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "live"
    verbose_name = "Live feeds"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from flunq_events import metrics
        from live.tailer import connected_clients

        metrics.register_gauge(
            "flunq_live_clients",
            "websocket and SSE feeds following the log live in this process",
            [],
            lambda: [({}, float(connected_clients()))],
        )
