from django.apps import AppConfig


class MastodonConfig(AppConfig):
    name = "broadsheet.identity.mastodon"
    label = "identity_mastodon"
    verbose_name = "Mastodon instances"
    default_auto_field = "django.db.models.BigAutoField"
