from django.apps import AppConfig


class PublishingConfig(AppConfig):
    name = "broadsheet.publishing"
    label = "publishing"
    verbose_name = "Publishing"

    def ready(self) -> None:
        from . import page_cache, signals, subscription_hooks

        page_cache.connect()
        signals.connect()
        subscription_hooks.connect()
