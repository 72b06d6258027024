from django.apps import AppConfig


class SnapshotsConfig(AppConfig):
    name = "snapshots"
    verbose_name = "Snapshots"
    default_auto_field = "django.db.models.BigAutoField"
