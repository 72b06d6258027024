from django.apps import AppConfig


class RelayConfig(AppConfig):
    name = "relay"
    verbose_name = "Relay to brokers"

    def ready(self) -> None:
        from relay import status

        status.register_readiness_checks()
        status.register_metrics()
