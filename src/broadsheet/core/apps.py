from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "broadsheet.core"
    label = "core"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers broadsheet.W001: rate limits per process)
