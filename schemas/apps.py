"""The schema registry app: versioned JSON Schemas per event type, checked on every append."""

from django.apps import AppConfig


class SchemasConfig(AppConfig):
    name = "schemas"
    verbose_name = "Schema registry"

    def ready(self) -> None:
        from events import services
        from schemas.validation import validate_events

        if validate_events not in services.before_append:
            services.before_append.append(validate_events)
