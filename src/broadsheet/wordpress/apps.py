from django.apps import AppConfig


class WordPressConfig(AppConfig):
    name = "broadsheet.wordpress"
    label = "wordpress"
    verbose_name = "WordPress migration"
    default_auto_field = "django.db.models.BigAutoField"
