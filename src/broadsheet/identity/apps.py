from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "broadsheet.identity"
    label = "identity"
    verbose_name = "Identities"

    def ready(self) -> None:
        from . import checks, signals  # noqa: F401
